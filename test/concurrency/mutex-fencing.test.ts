// Mutual exclusion as a protected resource sees it: many clients on every
// member contend for one Mutex through leader changes (moveLeader, a stopped
// and restarted leader), partitions and isolated holders, and write to two
// fenced registers (an in-process object and a key whose writes are txns
// guarded by "token >= highest token seen"). One client behaves like a
// process that pauses while holding the lock and then writes without
// looking at its session. Randomized: the seed is printed; replay with
// QUORUMKV_CONCURRENCY_SEED=<seed>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { isQuorumError } from '../../src/errors.js';
import { Mutex, Session, type HeldLock, type RecipeClock } from '../../src/concurrency/index.js';
import type { KV } from '../../src/server/kv.js';
import { text } from '../../src/server/kv.js';
import type { KvCluster } from '../server/helpers.js';
import { FencedRegister, IDS, rng, seedFor, session, sleep, startCluster } from './helpers.js';

/**
 * A clock whose timers can be frozen, as in a paused process: while paused,
 * due timers wait until the pause ends; `now()` goes on.
 */
class PausableClock implements RecipeClock {
  private pausedUntil = 0;
  constructor(private readonly base: RecipeClock) {}
  now(): number {
    return this.base.now();
  }
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.base.now() + ms);
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const handle: { h: unknown } = { h: undefined };
    const fire = (): void => {
      const wait = this.pausedUntil - this.base.now();
      if (wait > 0) handle.h = this.base.setTimeout(fire, wait);
      else fn();
    };
    handle.h = this.base.setTimeout(fire, ms);
    return handle;
  }
  clearTimeout(handle: unknown): void {
    this.base.clearTimeout((handle as { h: unknown }).h);
  }
}

const pad = (n: number): string => String(n).padStart(12, '0');

/** A write to the key register, accepted only if `token` >= the highest token written so far. */
async function fencedPut(kv: KV, token: number, value: string): Promise<boolean> {
  const res = await kv.txn({
    compare: [{ key: 'fence', target: 'VALUE', result: 'LESS', value: pad(token + 1) }],
    success: [{ put: { key: 'fence', value: pad(token) } }, { put: { key: 'register', value: `${pad(token)}:${value}` } }],
  });
  return res.succeeded;
}

/** Every value the key register took, in revision order, from its history. */
async function registerHistory(c: KvCluster, kv: KV): Promise<{ token: number; who: string; hid: number; seq: number }[]> {
  const out: { token: number; who: string; hid: number; seq: number }[] = [];
  const end = (await c.run(kv.range({ key: 'register' }))).header.revision;
  const w = kv.watch('register', { startRevision: 1 });
  let last = 0;
  w.on('put', (ev) => {
    const [token, who, hid, seq] = text(ev.kv.value).split(':');
    out.push({ token: Number(token), who: who!, hid: Number(hid), seq: Number(seq) });
  });
  w.on('response', (r) => (last = Math.max(last, r.header.revision)));
  await c.waitFor(() => last >= end || out.length > 0, 5_000, 'register history');
  await c.clock.advanceAsync(100);
  await w.cancel();
  return out;
}

interface Holding {
  client: number;
  token: number;
  acquiredAt: number;
  /** When the holder stopped believing it holds the lock (unlock started), or Infinity. */
  releasedAt: number;
  session: Session;
}

async function contend(seed: number): Promise<void> {
  const r = rng(seed);
  const c = await startCluster(seed);
  const END = 12_000;
  const holdings: Holding[] = [];
  const memoryRegister = new FencedRegister();
  const keyRejections: string[] = [];
  const errors = new Map<string, number>();
  const stopped = new Set<string>();
  try {
    await c.run(c.leader()!.put('fence', pad(0)));

    const client = async (i: number, zombie: boolean): Promise<void> => {
      const member = IDS[i % IDS.length]!;
      const clock = new PausableClock(c.clock);
      let s: Session | undefined;
      while (c.clock.now() < END) {
        const node = c.nodes.get(member);
        if (node === undefined) {
          await sleep(c, 100);
          continue;
        }
        let holding: Holding | undefined;
        try {
          if (s === undefined || !s.isAlive) s = await Session.create(node, { ttl: 1, clock });
          const m = new Mutex(s, 'fenced');
          const lock: HeldLock = await m.lock();
          const h: Holding = { client: i, token: lock.fencingToken, acquiredAt: c.clock.now(), releasedAt: Infinity, session: s };
          const hid = holdings.push(h) - 1;
          holding = h;
          for (let seq = 0; seq < 3; seq++) {
            if (zombie && seq === 1 && r.int(2) === 0) {
              // paused past the TTL: no keep-alive, no check of the session, then it writes
              clock.pause(1_500);
              await sleep(c, 1_500);
            } else if (s.isLost) {
              break;
            }
            memoryRegister.write(lock.fencingToken, String(i), seq, c.clock.now());
            if (!(await fencedPut(node, lock.fencingToken, `${i}:${hid}:${seq}`))) keyRejections.push(`${i}:${lock.fencingToken}:${seq}`);
            await sleep(c, r.int(100));
          }
          h.releasedAt = c.clock.now();
          await m.unlock();
        } catch (err) {
          // a holder that fails inside its critical section stops there (its key goes with the session)
          if (holding !== undefined && holding.releasedAt === Infinity) holding.releasedAt = c.clock.now();
          const code = isQuorumError(err) ? err.code : (err as Error).message;
          errors.set(code, (errors.get(code) ?? 0) + 1);
          await sleep(c, 50 + r.int(100));
        }
      }
      await s?.close().catch(() => undefined);
    };

    const faults = async (): Promise<void> => {
      while (c.clock.now() < END - 2_000) {
        await sleep(c, 400 + r.int(800));
        const kind = r.int(5);
        const live = [...c.nodes.keys()];
        if (kind === 0) {
          // isolate the member of the current holder, if any
          const current = holdings.at(-1);
          const target = current !== undefined && current.releasedAt === Infinity ? IDS[current.client % IDS.length]! : r.pick(live);
          c.net.isolate(target);
        } else if (kind === 1) {
          const one = r.pick(IDS);
          c.net.partition([one], IDS.filter((x) => x !== one));
        } else if (kind === 2) {
          const leader = c.leader();
          const to = leader === undefined ? undefined : live.filter((x) => x !== leader.id);
          if (leader !== undefined && to !== undefined && to.length > 0) leader.moveLeader(r.pick(to)).catch(() => undefined);
        } else if (kind === 3) {
          const leader = c.leader();
          if (leader !== undefined && c.nodes.size === IDS.length) {
            stopped.add(leader.id);
            await c.stop(leader.id);
            await sleep(c, 500 + r.int(1_000));
            await c.start(leader.id);
          }
        }
        await sleep(c, 300 + r.int(1_200));
        c.net.heal();
      }
      c.net.heal();
    };

    const clients = Array.from({ length: 6 }, (_, i) => client(i, i === 0));
    await c.run(Promise.all([...clients, faults()]), END + 30_000);
    const history = await registerHistory(c, c.leader() ?? (await c.waitLeader()));

    // 1. each acquisition gets a strictly greater token than every earlier one
    //    (or the same one, when a session whose unlock failed finds its key still there)
    const byTime = [...holdings].sort((a, b) => a.acquiredAt - b.acquiredAt || a.token - b.token);
    for (let k = 1; k < byTime.length; k++) {
      const a = byTime[k - 1]!;
      const b = byTime[k]!;
      assert.ok(b.token > a.token || (b.token === a.token && b.session === a.session), `seed ${seed}: token ${b.token} after ${a.token}`);
    }
    // 2. holders that stop when their session is lost never overlap: a holding
    //    ends at unlock or at its session's local deadline, before the next starts
    let maxEnd = -Infinity;
    for (const h of byTime) {
      assert.ok(h.acquiredAt >= maxEnd, `seed ${seed}: client ${h.client} acquired at ${h.acquiredAt} ms before the previous holding ended at ${maxEnd} ms`);
      const lostAt = h.session.error !== undefined ? h.session.expiresAt : Infinity;
      maxEnd = Math.max(maxEnd, Math.min(h.releasedAt, lostAt));
    }
    // 3. the fenced registers accept tokens in order only; only the paused client is ever rejected
    for (let k = 1; k < memoryRegister.accepted.length; k++) {
      assert.ok(memoryRegister.accepted[k]!.token >= memoryRegister.accepted[k - 1]!.token, `seed ${seed}: the register accepted a lower token`);
    }
    for (const rej of memoryRegister.rejected) assert.equal(rej.who, '0', `seed ${seed}: a write of client ${rej.who} that checks its session was rejected`);
    for (const rej of keyRejections) assert.ok(rej.startsWith('0:'), `seed ${seed}: key register rejected ${rej}`);
    // 4. the key register's history: tokens never go back, and each holder's writes are in order
    for (let k = 1; k < history.length; k++) {
      const a = history[k - 1]!;
      const b = history[k]!;
      assert.ok(b.token >= a.token, `seed ${seed}: register went from token ${a.token} back to ${b.token}`);
      // the same token again: the same session, later holding or later write of the same one
      if (b.token === a.token) {
        assert.ok(b.who === a.who && (b.hid > a.hid || (b.hid === a.hid && b.seq > a.seq)), `seed ${seed}: writes of token ${a.token} out of order`);
      }
    }
    // the run did contend: many holdings, including after faults
    assert.ok(holdings.length >= 15, `seed ${seed}: only ${holdings.length} holdings`);
    console.log(
      `# seed ${seed}: ${holdings.length} holdings, ${history.length} register writes, ` +
        `${memoryRegister.rejected.length}+${keyRejections.length} stale writes rejected, leaders stopped: ${[...stopped].join(',') || 'none'}, ` +
        `errors: ${[...errors].map(([k, v]) => `${k} x${v}`).join(', ') || 'none'}`,
    );
  } finally {
    c.net.heal();
    for (const id of IDS) if (!c.nodes.has(id)) await c.start(id).catch(() => undefined);
    await c.closeAll();
  }
}

const env = process.env.QUORUMKV_CONCURRENCY_SEED;
const seeds = env !== undefined && env !== '' ? [Number(env)] : [101, 202];

for (const s of seeds) {
  test(`contending clients never overlap and fenced writes stay in token order through faults (seed ${s})`, async () => {
    await contend(seedFor('mutex contention', s));
  });
}

test('a holder paused past its TTL still believes it holds the lock, and the fencing token rejects its writes', async () => {
  const c = await startCluster(41);
  try {
    const [f1, f2] = c.followers();
    await c.run(f1!.put('fence', pad(0)));
    const clock = new PausableClock(c.clock);
    const zs = await session(c, f1!, { ttl: 1, clock });
    const zombie = new Mutex(zs, 'paused');
    const zl = await c.run(zombie.lock());
    const other = new Mutex(await session(c, f2!, { ttl: 5 }), 'paused');
    let otherAt = -1;
    const po = other.lock().then((l) => {
      otherAt = c.clock.now();
      return l;
    });
    // the zombie pauses: its keep-alive loop does not run
    clock.pause(2_000);
    await c.clock.advanceAsync(2_000);
    const ol = await c.run(po);
    assert.ok(otherAt > 0 && ol.fencingToken > zl.fencingToken, 'the other holder got the lock with a greater token');
    assert.ok(zombie.current !== undefined, 'the paused holder still has its lock');
    assert.equal((await c.run(fencedPut(f2!, ol.fencingToken, 'other'))), true);
    // resuming without looking at its session, it writes with its old token
    assert.equal(await c.run(fencedPut(f1!, zl.fencingToken, 'zombie')), false, 'the key register rejects the stale token');
    const reg = new FencedRegister();
    assert.equal(reg.write(ol.fencingToken, 'other', 0, otherAt), true);
    assert.equal(reg.write(zl.fencingToken, 'zombie', 0, c.clock.now()), false, 'the resource rejects the stale token');
    const guarded = await c.run(f1!.txn({ compare: [zl.isOwner()], success: [{ put: { key: 'x', value: 'zombie' } }] }));
    assert.equal(guarded.succeeded, false, 'an isOwner-guarded write fails too');
    // had it looked, it would have known
    assert.equal(zs.isLost, true);
    assert.equal(zs.error!.reason, 'expired');
  } finally {
    await c.closeAll();
  }
});

/** docs/concurrency.md's fence-key example, as a function of the names it takes from its surroundings. */
function docFenceExample(): (node: KV, lock: HeldLock, data: string) => Promise<void> {
  const doc = readFileSync('docs/concurrency.md', 'utf8');
  const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes("key: 'fence'"));
  assert.equal(blocks.length, 1, 'docs/concurrency.md has one fence-key example');
  const js = ts.transpileModule(blocks[0]!, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
  const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (node: KV, lock: HeldLock, data: string) => Promise<void>;
  return new AsyncFunction('node', 'lock', 'data', js);
}

test("docs/concurrency.md's fence-key example, run as written, lets each new holder write and refuses the one before", async () => {
  const c = await startCluster(43);
  try {
    const example = docFenceExample();
    const [f1, f2] = c.followers();
    const report = async (): Promise<string | undefined> => {
      const kv = await c.run(f1!.get('report'));
      return kv === undefined ? undefined : text(kv.value);
    };
    const first = new Mutex(await session(c, f1!), 'docs-fence');
    const l1 = await c.run(first.lock());
    await c.run(example(f1!, l1, 'first'));
    assert.equal(await report(), 'first', "the first holder's write went through (the fence key did not exist before it)");
    await c.run(first.unlock());
    const second = new Mutex(await session(c, f2!), 'docs-fence');
    const l2 = await c.run(second.lock());
    await c.run(example(f2!, l2, 'second'));
    assert.equal(await report(), 'second');
    await c.run(example(f1!, l1, 'stale'));
    assert.equal(await report(), 'second', 'an older token is refused');
  } finally {
    await c.closeAll();
  }
});
