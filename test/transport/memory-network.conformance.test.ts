// MemoryNetwork against the Transport conformance suite (see conformance.ts).
import { runTransportConformance } from './conformance.js';
import { memoryCluster } from './clusters.js';

runTransportConformance('MemoryNetwork', memoryCluster());
