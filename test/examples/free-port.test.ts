// freePort picks the ports the examples, the demo, the process tests and the
// benchmarks listen on. Two members of one cluster given the same port, or
// a port an outgoing connection took in the meantime, fail to start with
// EADDRINUSE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePort } from '../../examples/lib/free-port.js';

test('freePort never hands out a port twice in one process, and each is free to listen on', async () => {
  const seen = new Set<number>();
  for (let i = 0; i < 3_000; i++) {
    const port = await freePort();
    assert.ok(!seen.has(port), `port ${port} handed out twice (call ${i})`);
    seen.add(port);
  }
  const last = [...seen].slice(-3);
  for (const port of last) {
    const srv = createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise((r) => srv.close(r));
  }
});

test('on Linux, freePort picks below the ephemeral range, where no outgoing connection takes its local port', async (t) => {
  let low: number;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    t.diagnostic('no /proc/sys/net/ipv4/ip_local_port_range: not Linux, nothing to check');
    return;
  }
  if (low < 11_000) {
    t.diagnostic(`ephemeral range starts at ${low}: too low to pick below it, the OS picks`);
    return;
  }
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    assert.ok(port >= 10_000 && port < low, `port ${port} not in 10000..${low - 1}`);
  }
});
