// Starts local etcd processes (Debian's etcd-server) for side-by-side
// benchmarks: one member, or a three-member cluster, on 127.0.0.1 with data
// in a temporary directory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../examples/lib/free-port.js';


export function etcdAvailable(): boolean {
  return spawnSync('etcd', ['--version']).status === 0;
}

export function etcdVersion(): string {
  const out = spawnSync('etcd', ['--version'], { encoding: 'utf8' }).stdout ?? '';
  return /etcd Version: (\S+)/.exec(out)?.[1] ?? 'unknown';
}

export interface EtcdCluster {
  /** Client URLs, one per member. */
  clients: string[];
  pids: number[];
  /** Resident set size of each member in bytes. */
  rss(): number[];
  stop(): Promise<void>;
}

export async function startEtcd(members = 1): Promise<EtcdCluster> {
  const root = mkdtempSync(join(tmpdir(), 'quorumkv-bench-etcd-'));
  const names = Array.from({ length: members }, (_, i) => `e${i}`);
  const peer: Record<string, number> = {};
  const client: Record<string, number> = {};
  for (const n of names) {
    peer[n] = await freePort();
    client[n] = await freePort();
  }
  const initial = names.map((n) => `${n}=http://127.0.0.1:${peer[n]}`).join(',');
  const procs: ChildProcess[] = names.map((n) =>
    spawn(
      'etcd',
      [
        '--name', n,
        '--data-dir', join(root, n),
        '--listen-client-urls', `http://127.0.0.1:${client[n]}`,
        '--advertise-client-urls', `http://127.0.0.1:${client[n]}`,
        '--listen-peer-urls', `http://127.0.0.1:${peer[n]}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peer[n]}`,
        '--initial-cluster', initial,
        '--initial-cluster-state', 'new',
        '--log-level', 'error',
      ],
      { stdio: 'ignore' },
    ),
  );
  const clients = names.map((n) => `http://127.0.0.1:${client[n]}`);
  // wait for health
  const deadline = Date.now() + 20_000;
  for (const url of clients) {
    for (;;) {
      try {
        const res = await fetch(`${url}/health`);
        if (res.ok && ((await res.json()) as { health?: string }).health === 'true') break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`etcd at ${url} did not become healthy`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    clients,
    pids: procs.map((p) => p.pid!),
    rss: () =>
      procs.map((p) => {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'));
        return m === null ? NaN : Number(m[1]) * 1024;
      }),
    async stop() {
      await Promise.all(
        procs.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.exitCode !== null) return resolve();
              p.once('exit', () => resolve());
              p.kill('SIGTERM');
            }),
        ),
      );
      rmSync(root, { recursive: true, force: true });
    },
  };
}
