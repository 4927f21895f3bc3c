// A TCP port on 127.0.0.1 that is free right now (the examples, the demo,
// the process tests and the benchmarks listen on such ports).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports this process has handed out: none is handed out twice. */
const given = new Set<number>();

/** Lowest port tried outside the kernel's ephemeral range. */
const LOWEST = 10_000;

/**
 * The kernel's ephemeral port range on Linux (where outgoing connections
 * take their local port), or undefined elsewhere.
 */
function ephemeralRange(): [number, number] | undefined {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return Number.isSafeInteger(low) && Number.isSafeInteger(high) ? [low!, high!] : undefined;
  } catch {
    return undefined;
  }
}

/** Listens on `port` of 127.0.0.1 (0: any), closes, and returns the port, or undefined when it is taken. */
function probe(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(undefined) : reject(err)));
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port assigned'))));
    });
  });
}

/**
 * A port on 127.0.0.1 that was free a moment ago and that this process has
 * not handed out before. On Linux it is picked at random below the kernel's
 * ephemeral range, so no outgoing connection (of this process or another)
 * can be given it as its local port before the caller listens; elsewhere
 * the OS picks it. Another process may still take it first.
 * @returns the port number
 * @throws the listen error (for instance EADDRNOTAVAIL without a loopback interface)
 */
export async function freePort(): Promise<number> {
  const range = ephemeralRange();
  if (range !== undefined && range[0] - LOWEST >= 1_000) {
    for (let attempt = 0; attempt < 100; attempt++) {
      const candidate = LOWEST + Math.floor(Math.random() * (range[0] - LOWEST));
      if (given.has(candidate)) continue;
      const port = await probe(candidate);
      if (port !== undefined) {
        given.add(port);
        return port;
      }
    }
  }
  for (;;) {
    const port = await probe(0);
    if (port === undefined) throw new Error('no free port on 127.0.0.1');
    if (!given.has(port)) {
      given.add(port);
      return port;
    }
  }
}
