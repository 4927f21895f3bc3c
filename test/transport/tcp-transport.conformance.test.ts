// TcpTransport (plain TCP on 127.0.0.1) against the Transport conformance suite (see conformance.ts).
import { runTransportConformance } from './conformance.js';
import { tcpCluster } from './clusters.js';

runTransportConformance('TcpTransport', tcpCluster());
