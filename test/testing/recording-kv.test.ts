// RecordingKV, KvHistory and checkKvHistory: recording a real KvNode's
// clients and checking the history, including histories that must fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, FaultError, UsageError } from '../../src/errors.js';
import { text, type KV, type KvNode } from '../../src/server/index.js';
import { KvNode as Node } from '../../src/server/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { HistoryRecorder, KvEventFile, KvEventSink, KvHistory, KvHistoryMerger, RecordingKV, SimRandom, checkKvHistory, type KvInput, type KvOutput, type KvRecordEvent, type Operation } from '../../src/testing/index.js';

async function withNode(fn: (node: KvNode) => Promise<void>): Promise<void> {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const node = await Node.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db, tickMs: 10, leaseCheckMs: 10 });
  try {
    while (!node.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
    await fn(node);
  } finally {
    await node.close();
    await db.close();
  }
}

/** A KV whose methods are the node's, with some replaced. */
function faulty(node: KvNode, over: Partial<KV>): KV {
  return new Proxy(node as unknown as KV, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && prop in over) return over[prop as keyof KV];
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

test('concurrent clients of a real KvNode: every modeled operation is recorded and the history checks out', async (t) => {
  // replay: QUORUMKV_SEED=<seed>
  const seed = process.env.QUORUMKV_SEED !== undefined ? Number(process.env.QUORUMKV_SEED) : Date.now() % 2 ** 31;
  t.diagnostic(`seed ${seed}`);
  const random = new SimRandom(seed);
  await withNode(async (node) => {
    const history = new KvHistory();
    let n = 0;
    const client = async (c: number): Promise<void> => {
      const kv = history.client(node, `c${c}`);
      for (let i = 0; i < 60; i++) {
        const key = `k${random.int(0, 3)}`;
        const roll = random.int(0, 5);
        n++;
        if (roll === 0) await kv.put(key, `v${c}.${i}`);
        else if (roll === 1) await kv.get(key);
        else if (roll === 2) await kv.delete(key);
        else if (roll === 3) await kv.range({ key: 'k', prefix: true });
        else {
          const cur = await kv.get(key);
          n++;
          await kv.txn({
            compare: [{ key, target: 'MOD', result: 'EQUAL', modRevision: cur?.modRevision ?? 0 }],
            success: [{ put: { key, value: `cas${c}.${i}` } }],
            failure: [{ range: { key } }],
          });
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(client));
    const v = history.check();
    assert.ok(v.ok, `seed ${seed}: ${v.describe()}`);
    assert.equal(history.operations().length, n, `seed ${seed}`);
    assert.equal(v.checked, n);
    assert.equal(v.excluded, 0);
    assert.ok(history.operations().every((op) => op.status === 'ok'));
  });
});

test('a stale read is found: a KV that answers a get from its cache fails the check', async () => {
  await withNode(async (node) => {
    const cache = new Map<string, Awaited<ReturnType<KV['range']>>>();
    const stale = faulty(node, {
      range: async (input) => {
        const key = String(input.key);
        const hit = cache.get(key);
        if (hit !== undefined) return hit;
        const res = await node.range(input);
        cache.set(key, res);
        return res;
      },
    });
    const history = new KvHistory();
    const kv = history.client(stale, 'c');
    await kv.put('k', '1');
    assert.ok((await kv.get('k')) !== undefined);
    await kv.put('k', '2');
    await kv.get('k'); // the cached '1'
    const v = history.check();
    assert.equal(v.result, 'illegal', v.describe());
    assert.match(v.describe(), /k/);
  });
});

test('a write that failed with a timeout may have applied (unknown); one that failed with a UsageError may not (fail)', async () => {
  await withNode(async (node) => {
    const applyThenThrow = (err: Error): KV =>
      faulty(node, {
        put: async (key, value, options) => {
          await node.put(key, value, options);
          throw err;
        },
      });
    // applied, then reported as a timeout: the later read explains it
    const ok = new KvHistory();
    await assert.rejects(ok.client(applyThenThrow(new FaultError(ErrorCode.TIMEOUT, 'timed out')), 'w').put('a', 'x'), { code: ErrorCode.TIMEOUT });
    await ok.client(node, 'r').get('a');
    assert.deepEqual(ok.operations().map((o) => o.status), ['unknown', 'ok']);
    assert.ok(ok.check().ok, ok.check().describe());
    // applied, then reported as certainly not applied: the read sees a value no write wrote
    const lying = new KvHistory();
    await assert.rejects(lying.client(applyThenThrow(new UsageError(ErrorCode.INVALID_ARGUMENT, 'no')), 'w').put('b', 'y'), { code: ErrorCode.INVALID_ARGUMENT });
    await lying.client(node, 'r').get('b');
    assert.deepEqual(lying.operations().map((o) => o.status), ['fail', 'ok']);
    assert.equal(lying.check().result, 'illegal');
  });
});

test('a put with a lease (alone or in a txn) leaves its key out, so an expiry no client sees is no false alarm; range deletes leave their range out', async () => {
  await withNode(async (node) => {
    const history = new KvHistory();
    const kv = history.client(node, 'c');
    const { id } = await kv.leaseGrant(60);
    await kv.put('leased', 'v', { lease: id });
    await kv.get('leased');
    await kv.txn({ compare: [], success: [{ put: { key: 'leased2', value: 'w', lease: id } }] });
    await kv.get('leased2');
    // the lease ends outside the recorded history (as an expiry would)
    await node.leaseRevoke(id);
    assert.equal(await kv.get('leased'), undefined);
    await kv.put('r/1', 'a');
    await kv.put('r/2', 'b');
    await kv.delete('r/', { prefix: true }); // a range delete, outside the model
    await kv.get('r/1');
    await kv.put('plain', 'p');
    await kv.get('plain');
    const v = history.check();
    assert.ok(v.ok, v.describe());
    assert.equal(v.checked, 2, v.describe());
    assert.equal(v.excluded, 6, v.describe());
    assert.deepEqual(history.excludedRanges(), [{ key: 'leased' }, { key: 'leased2' }, { key: 'r/', rangeEnd: 'r0' }]);
  });
});

test('without the exclusion, the same lease history is illegal (the exclusion is what keeps it quiet)', async () => {
  await withNode(async (node) => {
    const history = new KvHistory();
    const kv = history.client(node, 'c');
    const { id } = await kv.leaseGrant(60);
    await kv.put('leased', 'v', { lease: id });
    await node.leaseRevoke(id);
    await kv.get('leased');
    // the put as if recorded: modeled, ok at its revision
    const ops = history.operations();
    const put: Operation<KvInput, KvOutput> = { id: 100, clientId: 'c', input: { type: 'put', key: 'leased', value: 'v' }, output: { revision: 2 }, status: 'ok', callTime: -2, returnTime: -1 };
    assert.equal(checkKvHistory([put, ...ops], []).result, 'illegal');
    assert.equal(checkKvHistory([put, ...ops], history.excludedRanges()).result, 'ok');
  });
});

test('checkKvHistory refuses merged histories whose ids repeat, malformed inputs and malformed ranges', () => {
  const op = (id: number): Operation<KvInput, KvOutput> => ({ id, clientId: 'x', input: { type: 'get', key: 'k' }, output: { value: null, revision: 1 }, status: 'ok', callTime: 0, returnTime: 1 });
  assert.throws(() => checkKvHistory([op(0), op(0)]), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT && /id 0/.test(e.message));
  assert.ok(checkKvHistory([op(0), op(1)]).ok);
  // a malformed input or range is a UsageError, with exclusions or without
  const bad = { ...op(2), input: { type: 'gett', key: 'a' } } as unknown as Operation<KvInput, KvOutput>;
  for (const excluded of [[], [{ key: 'z' }]]) {
    assert.throws(() => checkKvHistory([bad], excluded), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT);
  }
  assert.throws(() => checkKvHistory([op(0)], [{ key: 1 } as never]), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT && /excluded range/.test(e.message));
});

test('KvEventSink and KvHistoryMerger: histories of two sources merge into one; an operation cut off by a crash is unknown', async () => {
  await withNode(async (node) => {
    const merger = new KvHistoryMerger();
    let now = 0;
    const clock = (): number => ++now;
    // two "processes" sharing a clock: the second is cut off with a write in flight
    const a = new RecordingKV(node, { sink: new KvEventSink((e) => merger.add('a', e), { clock }), clientId: 'a' });
    const bEvents: KvRecordEvent[] = [];
    const b = new RecordingKV(node, { sink: new KvEventSink((e) => bEvents.push(e), { clock }), clientId: 'b' });
    await a.put('k', '1');
    await b.put('k', '2');
    await a.get('k');
    // b's last completion never arrives
    for (const e of bEvents.slice(0, -1)) merger.add('b', e);
    const ops = merger.operations().sort((x, y) => x.callTime - y.callTime);
    assert.deepEqual(ops.map((o) => [o.clientId, o.input.type, o.status]), [['a', 'put', 'ok'], ['b', 'put', 'unknown'], ['a', 'get', 'ok']]);
    assert.equal(ops[1]!.returnTime, Infinity);
    assert.deepEqual(new Set(ops.map((o) => o.id)), new Set([0, 1, 2]));
    assert.ok(merger.check().ok, merger.check().describe());
    // the same get, had b's put been reported failed (certainly not applied), is illegal
    const lying = new KvHistoryMerger();
    for (const e of [...bEvents.slice(0, -1), { ...(bEvents.at(-1) as Extract<KvRecordEvent, { t: 'done' }>), status: 'fail' as const }]) lying.add('b', e);
    for (const o of ops.filter((x) => x.clientId === 'a')) {
      lying.add('a', { t: 'invoke', tag: o.id, clientId: 'a', input: o.input, at: o.callTime });
      lying.add('a', { t: 'done', tag: o.id, status: 'ok', output: o.output!, at: o.returnTime });
    }
    assert.equal(lying.check().result, 'illegal');
  });
});

test('KvHistoryMerger refuses malformed events and changes nothing', () => {
  const merger = new KvHistoryMerger();
  const refused = (e: unknown, why: RegExp): void =>
    assert.throws(() => merger.add('s', e as KvRecordEvent), (err: unknown) => err instanceof UsageError && err.code === ErrorCode.INVALID_ARGUMENT && why.test(err.message));
  merger.add('s', { t: 'invoke', tag: 0, clientId: 'c', input: { type: 'get', key: 'k' }, at: 1 });
  refused({ t: 'invoke', tag: 0, clientId: 'c', input: { type: 'get', key: 'k' }, at: 2 }, /invoked twice/);
  refused({ t: 'done', tag: 7, status: 'ok', output: { value: null, revision: 1 }, at: 2 }, /never invoked/);
  refused({ t: 'done', tag: 0, status: 'maybe', at: 2 }, /status/);
  refused({ t: 'done', tag: 0, status: 'ok', at: 2 }, /without an output/);
  refused({ t: 'done', tag: 0, status: 'ok', output: {}, at: Number.NaN }, /finite time/);
  refused({ t: 'what', tag: 1, at: 1 }, /invoke, done or exclude/);
  refused({ t: 'exclude', ranges: [{ rangeEnd: 'x' }] }, /range/);
  refused({ t: 'exclude', ranges: [{ key: 'a', rangeEnd: 5 }] }, /range/);
  refused({ t: 'invoke', tag: 3, clientId: 'c', input: {}, at: 1 }, /type/);
  refused({ t: 'invoke', tag: 3, clientId: 'c', input: { type: 'gett', key: 'k' }, at: 1 }, /type gett/);
  refused(null, /object/);
  assert.equal(merger.operations().length, 1);
  assert.equal(merger.operations()[0]!.status, 'unknown');
  merger.add('s', { t: 'done', tag: 0, status: 'ok', output: { value: null, revision: 1 }, at: 2 });
  refused({ t: 'done', tag: 0, status: 'ok', output: { value: null, revision: 1 }, at: 3 }, /already completed/);
  refused({ t: 'invoke', tag: 1, clientId: 'c', input: { type: 'get', key: 'k' }, at: 1 }, /went backwards/);
  // the same tag from another source is another operation
  merger.add('t', { t: 'invoke', tag: 0, clientId: 'd', input: { type: 'get', key: 'k' }, at: 4 });
  assert.deepEqual(merger.operations().map((o) => [o.id, o.status, o.returnTime]), [[0, 'ok', 2], [1, 'unknown', Infinity]]);
  assert.deepEqual(merger.excludedRanges(), []);
});

test('a key or value that starts with U+FEFF is its own (no false alarm from a dropped BOM); text() keeps it too', async () => {
  await withNode(async (node) => {
    const history = new KvHistory();
    const kv = history.client(node, 'c');
    await kv.put('\ufeffk', '\ufeffv');
    assert.equal(await kv.get('k'), undefined);
    const got = await kv.get('\ufeffk');
    assert.equal(text(got?.value), '\ufeffv');
    assert.equal(text(got?.key), '\ufeffk');
    const v = history.check();
    assert.ok(v.ok, v.describe());
    assert.deepEqual(history.operations().map((o) => o.input), [
      { type: 'put', key: '\ufeffk', value: '\ufeffv' },
      { type: 'get', key: 'k' },
      { type: 'get', key: '\ufeffk' },
    ]);
  });
});

test('KvEventFile: every event sent before a SIGKILL is in the file; a line cut short is left out; bad input is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-events-'));
  try {
    const path = join(dir, 'child.jsonl');
    const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/event-file-child.ts', import.meta.url)), path, '5000'], { encoding: 'utf8' });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    const events = KvEventFile.read(path);
    assert.equal(events.length, 10_000);
    const merger = new KvHistoryMerger();
    for (const e of events) merger.add('child', e);
    assert.equal(merger.operations().filter((o) => o.status === 'ok').length, 5000);

    // a last line cut short
    const cut = join(dir, 'cut.jsonl');
    const file = new KvEventFile(cut);
    file.send({ t: 'exclude', ranges: [{ key: 'a' }] });
    file.close();
    file.close();
    assert.throws(() => file.send({ t: 'exclude', ranges: [] }), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.STORAGE_CLOSED);
    appendFileSync(cut, '{"t":"exclu');
    assert.deepEqual(KvEventFile.read(cut), [{ t: 'exclude', ranges: [{ key: 'a' }] }]);
    appendFileSync(cut, 'de"\n');
    assert.throws(() => KvEventFile.read(cut), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT && /line 2/.test(e.message));
    assert.throws(() => new KvEventFile(join(dir, 'missing', 'x.jsonl')), (e: unknown) => e instanceof FaultError && e.code === ErrorCode.STORAGE_IO);
    assert.throws(() => KvEventFile.read(join(dir, 'missing.jsonl')), (e: unknown) => e instanceof FaultError && e.code === ErrorCode.STORAGE_IO);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('KvHistory refuses a clock that goes backwards, and records nothing for that call', () => {
  let now = 10;
  const history = new KvHistory({ clock: () => now });
  history.invoke('c', { type: 'get', key: 'k' }).ok({ value: null, revision: 1 });
  now = 5;
  assert.throws(() => history.invoke('c', { type: 'get', key: 'k' }), (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT);
  assert.equal(history.operations().length, 1);
});

test('RecordingKV.get refuses what KvNode.get refuses (rangeEnd, prefix, an option of another name, null), and records nothing for it', async () => {
  await withNode(async (node) => {
    await node.put('p/1', 'one');
    const history = new KvHistory();
    const kv = history.client(node, 'c');
    const bad: [string, unknown][] = [
      ['prefix', { prefix: true }],
      ['rangeEnd', { rangeEnd: 'q' }],
      ['serialisable', { serialisable: true }],
      ['null', null],
    ];
    const invalid = (e: unknown): boolean => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT;
    for (const [name, options] of bad) {
      await assert.rejects(node.get('p/', options as never), invalid, `KvNode.get with ${name}`);
      // the wrapper read the range instead, and returned its first key
      await assert.rejects(kv.get('p/', options as never), invalid, `RecordingKV.get with ${name}`);
    }
    assert.equal(history.operations().length, 0);
  });
});

test('RecordingKV, KvEventSink, KvHistory and HistoryRecorder refuse a kv, sink, client id, send or clock of the wrong type when built', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Any = any;
  const kv = { put() {}, get() {}, range() {}, delete() {}, txn() {}, watch() {}, leaseGrant() {}, leaseRevoke() {}, leaseKeepAlive() {}, leaseTimeToLive() {}, leases() {} } as unknown as KV;
  const sink = new KvHistory();
  const invalid = (e: unknown) => e instanceof UsageError && e.code === ErrorCode.INVALID_ARGUMENT;
  const bad: [string, () => unknown][] = [
    ['RecordingKV without options', () => new RecordingKV(kv, undefined as Any)],
    ['RecordingKV without a kv', () => new RecordingKV(null as Any, { sink, clientId: 'c' })],
    ['RecordingKV with a kv that is not a KV', () => new RecordingKV({} as Any, { sink, clientId: 'c' })],
    ['RecordingKV without a sink', () => new RecordingKV(kv, { sink: undefined as Any, clientId: 'c' })],
    ['RecordingKV with a sink that is not one', () => new RecordingKV(kv, { sink: {} as Any, clientId: 'c' })],
    ['RecordingKV without a client id', () => new RecordingKV(kv, { sink } as Any)],
    ['RecordingKV with a client id that is an object', () => new RecordingKV(kv, { sink, clientId: {} as Any })],
    ['KvHistory.client without a kv', () => sink.client(undefined as Any, 'c')],
    ['KvEventSink without a send function', () => new KvEventSink(5 as Any)],
    ['KvEventSink with a clock that is not a function', () => new KvEventSink(() => undefined, { clock: 5 as Any })],
    ['KvHistory with a clock that is not a function', () => new KvHistory({ clock: 'now' as Any })],
    ['HistoryRecorder with a clock that is not a function', () => new HistoryRecorder({ clock: 5 as Any })],
  ];
  for (const [name, build] of bad) assert.throws(build, invalid, name);
  // what they accept
  new RecordingKV(kv, { sink, clientId: 'c' });
  new RecordingKV(kv, { sink, clientId: 7 });
  new KvEventSink(() => undefined, { clock: () => 1 });
  new HistoryRecorder({ clock: () => 1 });
});

test('a serializable read-only txn of a member cut off from the leader is not checked as linearizable (etcd serves it from the member alone): no false alarm; a linearizable one is checked', async () => {
  const { KvCluster } = await import('../server/helpers.js');
  const c = new KvCluster(['a', 'b', 'c'], 3);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const f = c.followers()[0]!;
    const history = new KvHistory();
    const w = history.client(leader, 'w');
    const r = history.client(f, 'r');
    await c.run(w.put('k', '1'));
    await c.waitFor(() => f.status().revision >= 2, 2_000, 'follower applies');
    c.net.isolate(f.id);
    await c.run(w.put('k', '2'));
    // the isolated member answers from what it has: '1', after '2' was acknowledged
    const stale = await r.txn({ compare: [{ key: 'k', target: 'VALUE', result: 'EQUAL', value: '1' }], success: [{ range: { key: 'k', serializable: true } }] });
    assert.equal(stale.succeeded, true);
    assert.equal(text((stale.responses[0] as { responseRange: { kvs: { value: Uint8Array }[] } }).responseRange.kvs[0]!.value), '1');
    c.net.heal();
    const v = history.check();
    assert.ok(v.ok, v.describe());
    assert.equal(v.excluded, 0, 'a read-only txn excludes no key');
    // a linearizable read-only txn is checked: the same stale answer to one is found
    const lying = new KvHistory();
    const stalled = faulty(f, { txn: async () => stale });
    await lying.client(leader, 'w').put('k', '3');
    await lying.client(stalled, 'r').txn({ compare: [{ key: 'k', target: 'VALUE', result: 'EQUAL', value: '1' }], success: [{ range: { key: 'k' } }] });
    assert.equal(lying.check().result, 'illegal');
  } finally {
    await c.closeAll();
  }
});
