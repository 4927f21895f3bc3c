// Three RaftNodes in three processes, on real TCP (127.0.0.1) and classic-level
// on disk (test/node/fixtures/raft-process.ts). The test proposes
// continuously to every live member (followers forward) with unique keys,
// SIGKILLs the leader, waits for a new one, SIGKILLs a follower, restarts both
// from their data directories on the same ports, and then checks that every
// acknowledged proposal is applied on every member once, at the index its
// proposer was given, and that the three apply logs are identical. It runs
// twice: with the Raft log in the state machine's classic-level database and
// with it in files (FileLogStorage).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildStatus, FromChild, ToChild } from './fixtures/raft-process.js';
import { freePort } from '../../examples/lib/free-port.js';

const CHILD = fileURLToPath(new URL('./fixtures/raft-process.ts', import.meta.url));
const IDS = ['a', 'b', 'c'];


function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Pending {
  resolve(index: number): void;
  reject(err: Error): void;
}

/** One member's process, as seen from the parent. */
class Member {
  child: ChildProcess | undefined;
  status: ChildStatus | undefined;
  alive = false;
  private readonly pending = new Map<number, Pending>();
  private dumpWaiter: ((m: Extract<FromChild, { t: 'dump' }>) => void) | undefined;

  constructor(
    readonly id: string,
    readonly dataDir: string,
    private readonly args: string[],
  ) {}

  /** Forks the process; resolves once its RaftNode is running. */
  start(): Promise<void> {
    this.status = undefined;
    const child = fork(CHILD, this.args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child = child;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`member ${this.id} did not start within 20 s`)), 20_000);
      child.on('message', (raw) => {
        const m = raw as FromChild;
        if (child !== this.child) return;
        switch (m.t) {
          case 'ready':
            this.alive = true;
            this.status = m.status;
            clearTimeout(timer);
            resolve();
            break;
          case 'status':
            this.status = m.status;
            break;
          case 'proposed':
            this.pending.get(m.req)?.resolve(m.index);
            this.pending.delete(m.req);
            break;
          case 'failed':
            this.pending.get(m.req)?.reject(new Error(m.error));
            this.pending.delete(m.req);
            break;
          case 'dump':
            this.status = m.status;
            this.dumpWaiter?.(m);
            this.dumpWaiter = undefined;
            break;
        }
      });
      child.on('exit', (code, signal) => {
        if (child !== this.child) return;
        this.alive = false;
        clearTimeout(timer);
        reject(new Error(`member ${this.id} exited during startup (code ${code}, signal ${signal})`));
        for (const p of this.pending.values()) p.reject(new Error(`member ${this.id} exited`));
        this.pending.clear();
      });
    });
  }

  private send(m: ToChild): void {
    this.child?.send(m);
  }

  propose(req: number, key: string, value: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (!this.alive) return reject(new Error(`member ${this.id} is down`));
      this.pending.set(req, { resolve, reject });
      this.send({ t: 'propose', req, key, value });
    });
  }

  dump(): Promise<Extract<FromChild, { t: 'dump' }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`member ${this.id} did not answer a dump`)), 5000);
      this.dumpWaiter = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.send({ t: 'dump' });
    });
  }

  /** SIGKILLs the process and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    this.alive = false;
    child.kill('SIGKILL');
    await gone;
  }
}

async function waitFor<T>(what: string, maxMs: number, probe: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${maxMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

for (const logKind of ['level', 'files'] as const) {
  test(`acknowledged proposals survive SIGKILL of the leader and of a follower: three processes apply the same log (Raft log: ${logKind === 'level' ? 'LevelLogStorage' : 'FileLogStorage'})`, { timeout: 90_000 }, () => killTest(logKind));
}

async function killTest(logKind: 'level' | 'files'): Promise<void> {
  const started = Date.now();
  const root = mkdtempSync(join(tmpdir(), 'quorumkv-process-'));
  const addresses: Record<string, string> = {};
  for (const id of IDS) addresses[id] = `127.0.0.1:${await freePort()}`;
  const members = new Map<string, Member>();
  for (const id of IDS) {
    const dataDir = join(root, id);
    members.set(id, new Member(id, dataDir, [id, dataDir, 'process-test', JSON.stringify(addresses), logKind]));
  }
  const all = [...members.values()];

  /** key -> index its proposer was given */
  const acked = new Map<string, number>();
  let failed = 0;
  let proposing = true;
  let req = 0;
  const live = (): Member[] => all.filter((m) => m.alive);
  const leaderOf = (ms: Member[]): Member | undefined => ms.find((m) => m.alive && m.status?.role === 'leader');

  // Four clients, each proposing one unique key at a time to a live member in turn.
  const client = async (c: number): Promise<void> => {
    let n = 0;
    while (proposing) {
      const targets = live();
      if (targets.length === 0) {
        await sleep(20);
        continue;
      }
      const target = targets[(c + n) % targets.length]!;
      const key = `k${c}-${n++}`;
      try {
        acked.set(key, await target.propose(++req, key, `v${c}`));
      } catch {
        failed++;
        await sleep(20);
      }
    }
  };
  let clients: Promise<void>[] = [];

  try {
    await Promise.all(all.map((m) => m.start()));
    const startupMs = Date.now() - started;
    clients = [0, 1, 2, 3].map((c) => client(c));

    const first = await waitFor('a leader', 10_000, () => leaderOf(all));
    await waitFor('proposals before the leader is killed', 10_000, () => acked.size >= 50);
    const firstTerm = first.status!.term;
    await first.kill();
    const killedAt = acked.size;

    const others = all.filter((m) => m !== first);
    const second = await waitFor('a new leader', 10_000, () => {
      const l = leaderOf(others);
      return l !== undefined && l.status!.term > firstTerm ? l : undefined;
    });
    await waitFor('proposals under the new leader', 10_000, () => acked.size >= killedAt + 50);

    const follower = others.find((m) => m !== second)!;
    await follower.kill();
    await sleep(300); // proposals in flight to the lone member time out or fail
    await Promise.all([first.start(), follower.start()]);
    const restartedAt = acked.size;
    await waitFor('a leader after the restarts', 10_000, () => leaderOf(all));
    await waitFor('proposals after the restarts', 10_000, () => acked.size >= restartedAt + 50);

    proposing = false;
    await Promise.all(clients);
    clients = [];

    // Every member has applied the whole log, and the logs end at the same index.
    await waitFor('all members to apply the same last index', 15_000, () => {
      const st = all.map((m) => m.status);
      if (st.some((s) => s === undefined)) return false;
      const last = st[0]!.lastIndex;
      return st.every((s) => s!.lastIndex === last && s!.applied === last && s!.commit === last);
    });

    const dumps = await Promise.all(all.map((m) => m.dump()));
    const logs = dumps.map((d) => d.applyLog);
    for (let i = 1; i < logs.length; i++) {
      assert.deepEqual(logs[i], logs[0], `member ${all[i]!.id}'s apply log equals member ${all[0]!.id}'s`);
    }
    const at = new Map<string, number>();
    for (const line of logs[0]!) {
      const m = /^(\d+) ([^=]+)=/.exec(line);
      assert.ok(m !== null, `apply log line ${JSON.stringify(line)} is "index key=value"`);
      assert.ok(!at.has(m[2]!), `key ${m[2]} applied once (again at ${m[1]})`);
      at.set(m[2]!, Number(m[1]));
    }
    const indexes = logs[0]!.map((line) => Number(line.split(' ')[0]));
    assert.ok(
      indexes.every((x, i) => i === 0 || x > indexes[i - 1]!),
      'the apply log is in increasing index order',
    );
    for (const [key, index] of acked) {
      assert.equal(at.get(key), index, `acknowledged key ${key} is applied at the index its proposer got (${index})`);
    }
    assert.ok(acked.size >= 150, `enough proposals were acknowledged (${acked.size})`);
    console.log(
      `process test (${logKind}): ${acked.size} acknowledged, ${failed} failed or timed out, ${logs[0]!.length} applied entries, ` +
        `last index ${dumps[0]!.status.lastIndex}, terms ${firstTerm} -> ${dumps[0]!.status.term}, ` +
        `leader ${first.id} then ${second.id}, follower ${follower.id} killed; startup ${startupMs} ms, total ${Date.now() - started} ms`,
    );
  } finally {
    proposing = false;
    await Promise.all(all.map((m) => m.kill()));
    await Promise.allSettled(clients);
    rmSync(root, { recursive: true, force: true });
  }
}
