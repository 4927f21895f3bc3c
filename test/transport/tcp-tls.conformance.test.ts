// TcpTransport over mutual TLS (test/fixtures/tls certificates) against the Transport conformance suite.
import { runTransportConformance } from './conformance.js';
import { tcpCluster } from './clusters.js';

runTransportConformance('TcpTransport over mutual TLS', tcpCluster({ tls: true }));
