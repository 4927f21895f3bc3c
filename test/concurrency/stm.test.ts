// STM (etcd's concurrency.STM) on a 3-member cluster with a virtual clock:
// concurrent transfers between accounts under each isolation level, the
// commit compares of each level, retries and their limit, prefetch, aborts.
// Randomized transfers: the seed is printed; replay with
// QUORUMKV_CONCURRENCY_SEED=<seed>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, FaultError } from '../../src/errors.js';
import { transact, type Isolation } from '../../src/concurrency/index.js';
import type { KV } from '../../src/server/kv.js';
import { text } from '../../src/server/kv.js';
import { hasCode, rng, seedFor, sleep, startCluster } from './helpers.js';

const ACCOUNTS = ['acct/a', 'acct/b', 'acct/c', 'acct/d', 'acct/e'];
const START = 100;

async function transfers(isolation: Isolation, seed: number): Promise<{ total: number; attempts: number; runs: number; snapshots: number[] }> {
  const r = rng(seed);
  const c = await startCluster(seed);
  try {
    const members = [...c.nodes.values()];
    for (const a of ACCOUNTS) await c.run(members[0]!.put(a, String(START)));
    let attempts = 0;
    let runs = 0;
    const snapshots: number[] = [];
    const worker = async (kv: KV, n: number): Promise<void> => {
      for (let k = 0; k < n; k++) {
        const from = r.pick(ACCOUNTS);
        const to = r.pick(ACCOUNTS.filter((x) => x !== from));
        const amount = 1 + r.int(10);
        const res = await transact(
          kv,
          async (stm) => {
            const a = Number(await stm.get(from));
            await sleep(c, r.int(30)); // let others interleave between the reads and the commit
            const b = Number(await stm.get(to));
            stm.put(from, String(a - amount));
            stm.put(to, String(b + amount));
          },
          { isolation, retries: 50 },
        );
        attempts += res.attempts;
        runs++;
      }
    };
    const auditor = async (): Promise<void> => {
      for (let k = 0; k < 6; k++) {
        await sleep(c, 40);
        const res = await transact(
          members[2]!,
          async (stm) => {
            let sum = 0;
            for (const a of ACCOUNTS) sum += Number(await stm.get(a));
            return sum;
          },
          { isolation: 'serializableSnapshot' },
        );
        snapshots.push(res.value);
      }
    };
    await c.run(Promise.all([...Array.from({ length: 6 }, (_, i) => worker(members[i % 3]!, 6)), auditor()]), 60_000);
    let total = 0;
    for (const a of ACCOUNTS) total += Number(text((await c.run(members[1]!.get(a)))?.value));
    return { total, attempts, runs, snapshots };
  } finally {
    await c.closeAll();
  }
}

const env = process.env.QUORUMKV_CONCURRENCY_SEED;
const seed = env !== undefined && env !== '' ? Number(env) : 404;

for (const isolation of ['serializableSnapshot', 'serializable', 'repeatableReads'] as const) {
  test(`concurrent transfers keep the total constant under ${isolation}, retrying on conflicts`, async () => {
    const s = seedFor(`stm ${isolation}`, seed);
    const { total, attempts, runs, snapshots } = await transfers(isolation, s);
    assert.equal(total, ACCOUNTS.length * START, `seed ${s}: money was created or lost`);
    assert.equal(runs, 36);
    assert.ok(attempts > runs, `seed ${s}: conflicts happened and were retried (${attempts} runs of the function for ${runs} transfers)`);
    for (const sum of snapshots) assert.equal(sum, ACCOUNTS.length * START, `seed ${s}: an audit saw a total of ${sum}`);
  });
}

test('readCommitted never retries (no commit compares), even under the same contention', async () => {
  const s = seedFor('stm readCommitted', seed);
  const { attempts, runs } = await transfers('readCommitted', s);
  assert.equal(attempts, runs, 'one run per transfer');
});

test('past its retry limit a conflicting transaction fails with QUORUMKV_STM_CONFLICT and writes nothing', async () => {
  const c = await startCluster(61);
  try {
    const [f1, f2] = c.followers();
    await c.run(f1!.put('hot', '0'));
    let calls = 0;
    const p = transact(
      f1!,
      async (stm) => {
        calls++;
        const v = Number(await stm.get('hot'));
        await f2!.put('hot', String(v + 100)); // a concurrent writer wins every time
        stm.put('hot', String(v + 1));
        stm.put('side', 'effect');
      },
      { retries: 2 },
    );
    await assert.rejects(c.run(p), (e: unknown) => e instanceof FaultError && e.code === ErrorCode.STM_CONFLICT);
    assert.equal(calls, 3, 'the first run and two retries');
    assert.equal(await c.run(f1!.get('side')), undefined);
    assert.equal(text((await c.run(f1!.get('hot')))?.value), '300');
  } finally {
    await c.closeAll();
  }
});

test('serializableSnapshot also conflicts on a written key changed after the snapshot; serializable does not', async () => {
  const c = await startCluster(62);
  try {
    const [f1, f2] = c.followers();
    await c.run(f1!.put('x', '1'));
    await c.run(f1!.put('y', '1'));
    const run = async (isolation: Isolation): Promise<number> => {
      let first = true;
      const res = await c.run(
        transact(
          f1!,
          async (stm) => {
            const x = await stm.get('x');
            if (first) {
              first = false;
              await f2!.put('y', 'concurrent'); // y is written, never read, by this transaction
            }
            stm.put('y', `from-x-${x}`);
          },
          { isolation },
        ),
      );
      return res.attempts;
    };
    assert.equal(await run('serializableSnapshot'), 2);
    assert.equal(await run('serializable'), 1);
    assert.equal(text((await c.run(f2!.get('y')))?.value), 'from-x-1');
  } finally {
    await c.closeAll();
  }
});

test('inside a transaction get sees its own writes, rev reports modRevision, put creates and del deletes', async () => {
  const c = await startCluster(63);
  try {
    const f = c.followers()[0]!;
    const put = await c.run(f.put('old', 'v'));
    const res = await c.run(
      transact(f, async (stm) => {
        assert.equal(await stm.get('new'), undefined);
        assert.equal(await stm.rev('new'), 0);
        assert.equal(await stm.rev('old'), put.header.revision);
        stm.put('new', 'n');
        assert.equal(await stm.get('new'), 'n');
        stm.del('old');
        assert.equal(await stm.get('old'), undefined);
        return 'done';
      }),
    );
    assert.equal(res.value, 'done');
    assert.equal(res.attempts, 1);
    assert.equal(text((await c.run(f.get('new')))?.value), 'n');
    assert.equal(await c.run(f.get('old')), undefined);
    assert.ok(res.response.header.revision > put.header.revision, 'the commit is a new revision');
  } finally {
    await c.closeAll();
  }
});

test('a transaction function that throws commits nothing; prefetched keys cost no extra read; an aborted signal stops retries', async () => {
  const c = await startCluster(64);
  try {
    const f = c.followers()[0]!;
    await c.run(f.put('p1', 'a'));
    await c.run(f.put('p2', 'b'));
    await assert.rejects(
      c.run(
        transact(f, (stm) => {
          stm.put('never', 'x');
          throw new Error('changed my mind');
        }),
      ),
      /changed my mind/,
    );
    assert.equal(await c.run(f.get('never')), undefined);
    let ranges = 0;
    const counting = new Proxy(f, {
      get(target, prop) {
        if (prop === 'range') {
          return (...args: Parameters<KV['range']>) => {
            ranges++;
            return target.range(...args);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const res = await c.run(transact(counting, async (stm) => `${await stm.get('p1')}${await stm.get('p2')}`, { prefetch: ['p1', 'p2'] }));
    assert.equal(res.value, 'ab');
    assert.equal(ranges, 0, 'both keys came from the prefetch');
    await assert.rejects(c.run(transact(f, () => 1, { signal: AbortSignal.abort() })), hasCode(ErrorCode.ABORTED));
    await assert.rejects(c.run(transact(f, () => 1, { retries: -1 })), hasCode(ErrorCode.INVALID_ARGUMENT));
  } finally {
    await c.closeAll();
  }
});

for (const isolation of ['serializableSnapshot', 'serializable', 'repeatableReads'] as const) {
  test(`${isolation}: two reads of one key in flight at once are one read, so the commit checks the value the function saw`, async () => {
    const c = await startCluster(65);
    try {
      const [f1, f2] = c.followers();
      await c.run(f1!.put('x', '1'));
      // the second range of x is sent only after a concurrent writer has changed it
      let ranges = 0;
      const racing = new Proxy(f1!, {
        get(target, prop) {
          if (prop === 'range') {
            return async (...args: Parameters<KV['range']>) => {
              if (String(args[0].key) === 'x' && ++ranges === 2) await f2!.put('x', '100');
              return target.range(...args);
            };
          }
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const res = await c.run(
        transact(
          racing,
          async (stm) => {
            const [v] = await Promise.all([stm.get('x'), stm.rev('x')]);
            stm.put('x', String(Number(v) + 1));
            return v;
          },
          { isolation },
        ),
      );
      // no lost update: once the writer has put 100, the commit is 101
      // (the function saw 100, or it conflicted and ran again), never 1 + 1
      const final = text((await c.run(f1!.get('x')))?.value);
      assert.equal(final, ranges >= 2 ? '101' : String(Number(res.value) + 1), `${isolation}: the function saw ${res.value}, x is ${final}`);
      assert.equal(ranges, 1, 'x was read once');
    } finally {
      await c.closeAll();
    }
  });
}

test('reads started together at the snapshot levels see one snapshot: a transfer between them is not seen halfway', async () => {
  for (const isolation of ['serializableSnapshot', 'serializable'] as const) {
    for (const prefetch of [false, true]) {
      const c = await startCluster(409);
      try {
        const node = c.leader()!;
        await c.run(node.put('pair/a', '50'));
        await c.run(node.put('pair/b', '50'));
        const transfer = () => node.txn({ success: [{ put: { key: 'pair/a', value: '40' } }, { put: { key: 'pair/b', value: '60' } }] });
        // without prefetch: pair/a is read, then a transfer from a to b
        // commits, then pair/b is read. With pair/b prefetched (before the
        // transfer): the transfer commits, then pair/a is read
        let aRead: () => void = () => undefined;
        const aAnswered = new Promise<void>((resolve) => (aRead = resolve));
        let transferred = false;
        const kv = new Proxy(node, {
          get(target, prop) {
            if (prop === 'range') {
              return async (input: Parameters<KV['range']>[0]) => {
                if (prefetch && input.key === 'pair/a' && !transferred) {
                  transferred = true;
                  await transfer();
                }
                if (!prefetch && input.key === 'pair/a') {
                  const res = await target.range(input);
                  aRead();
                  return res;
                }
                if (!prefetch && input.key === 'pair/b' && !transferred) {
                  transferred = true;
                  await aAnswered;
                  await transfer();
                }
                return target.range(input);
              };
            }
            const v = Reflect.get(target, prop, target) as unknown;
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        }) as KV;
        const sums: number[] = [];
        await c.run(
          transact(
            kv,
            async (stm) => {
              const [a, b] = await Promise.all([stm.get('pair/a'), stm.get('pair/b')]);
              sums.push(Number(a) + Number(b));
              stm.put('pair/seen', String(Number(a) + Number(b)));
            },
            { isolation, prefetch: prefetch ? ['pair/b'] : [] },
          ),
        );
        assert.ok(transferred);
        assert.deepEqual(sums, sums.map(() => 100), `${isolation}${prefetch ? ', pair/b prefetched' : ''}: the runs saw totals of ${JSON.stringify(sums)} (one account before the transfer, the other after it)`);
      } finally {
        await c.closeAll();
      }
    }
  }
});
