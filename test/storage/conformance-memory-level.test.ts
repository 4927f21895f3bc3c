import { runLogStorageConformance } from './conformance.js';
import { memoryLevelFixture } from './fixtures.js';

runLogStorageConformance('memory-level', memoryLevelFixture);
