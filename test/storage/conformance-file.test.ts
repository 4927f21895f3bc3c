import { runLogStorageConformance } from './conformance.js';
import { fileFixture } from './fixtures.js';

runLogStorageConformance('files (FileLogStorage)', fileFixture, { raw: false });
