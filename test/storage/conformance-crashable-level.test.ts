import { runLogStorageConformance } from './conformance.js';
import { crashableLevelFixture } from './fixtures.js';

runLogStorageConformance('crashable-level', crashableLevelFixture);
