import { runLogStorageConformance } from './conformance.js';
import { fileFixture } from './fixtures.js';

runLogStorageConformance('files (FileLogStorage)', () => fileFixture(), { raw: false });
runLogStorageConformance('files, every append through the thread pool', () => fileFixture(0), { raw: false });
