// A TCP port on 127.0.0.1 that is free right now (the examples, the demo,
// the process tests and the benchmarks listen on such ports).
import { createServer } from 'node:net';

/**
 * Asks the OS for a free port on 127.0.0.1 by listening on port 0 and
 * closing again. Another process may take it before the caller listens.
 * @returns the port number
 * @throws the listen error (for instance EADDRNOTAVAIL without a loopback interface)
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port assigned'))));
    });
  });
}
