import { runLogStorageConformance } from './conformance.js';
import { classicLevelFixture } from './fixtures.js';

runLogStorageConformance('classic-level', classicLevelFixture);
