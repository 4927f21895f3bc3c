// Starts a throw-away single-member etcd on 127.0.0.1 with free ports and a
// temporary data directory (on /dev/shm when there is one, so fsync is
// cheap), and stops it; killed, and its directory removed, when this
// process exits or is stopped by a signal.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '../../examples/lib/free-port.js';
import { onExit } from './exit-cleanup.js';

/** Path of the etcd binary: `ETCD_BIN`, else the first `etcd` on PATH; undefined when missing. */
export function findEtcd(): string | undefined {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  const env = process.env.ETCD_BIN;
  if (env !== undefined && env !== '') return executable(env) ? env : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, 'etcd');
    if (executable(p)) return p;
  }
  return undefined;
}

/** A running etcd. */
export interface EtcdProcess {
  /** Client URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** Kills etcd (SIGKILL) and removes its data directory. */
  stop(): Promise<void>;
}

/** Starts etcd and waits until it answers its health check. */
export async function startEtcd(bin: string): Promise<EtcdProcess> {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(join(base, 'quorumkv-etcd-diff-'));
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const child: ChildProcess = spawn(
    bin,
    [
      '--name', 'diff',
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', url,
      '--advertise-client-urls', url,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `diff=${peerUrl}`,
      '--log-level', 'error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const forget = onExit(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exited = false;
  let stopping = false;
  child.on('error', (err) => {
    exited = true;
    stderr += `\n${err.message}`;
  });
  child.on('exit', (code, signal) => {
    exited = true;
    if (!stopping) console.error(`etcd ${url} exited unexpectedly (code ${code}, signal ${signal}):\n${stderr}`);
  });
  const stop = async () => {
    stopping = true;
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    await rm(dir, { recursive: true, force: true });
    forget();
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`etcd exited during start-up: ${stderr}`);
    }
    try {
      const res = await fetch(`${url}/health`);
      const body = (await res.json()) as { health?: string };
      if (body.health === 'true') return { url, stop };
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`etcd did not become healthy in 20 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
