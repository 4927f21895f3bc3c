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

/** `count` distinct free ports (the OS may hand the same free port out twice in a row). */
async function distinctPorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * Starts `members` etcd processes and waits until each reports itself
 * healthy. A start whose members are not all healthy within 20 s (a port
 * another process took meanwhile) is stopped and made again once on new
 * ports.
 */
export async function startEtcd(members = 1): Promise<EtcdCluster> {
  try {
    return await startEtcdOnce(members);
  } catch (err) {
    console.error(`  (${(err as Error).message}: starting etcd again on other ports)`);
    return startEtcdOnce(members);
  }
}

async function startEtcdOnce(members: number): Promise<EtcdCluster> {
  const root = mkdtempSync(join(tmpdir(), 'quorumkv-bench-etcd-'));
  const names = Array.from({ length: members }, (_, i) => `e${i}`);
  const peer: Record<string, number> = {};
  const client: Record<string, number> = {};
  const ports = await distinctPorts(2 * members);
  names.forEach((n, i) => {
    peer[n] = ports[2 * i]!;
    client[n] = ports[2 * i + 1]!;
  });
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
  const stop = async (): Promise<void> => {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGTERM');
          }),
      ),
    );
    rmSync(root, { recursive: true, force: true });
  };
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
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`etcd at ${url} did not become healthy`);
      }
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
    stop,
  };
}
