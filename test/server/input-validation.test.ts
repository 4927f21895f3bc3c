// Bad input to KvNode's public methods and options gets a typed error with a
// stable code and changes nothing: no entry is proposed (so no member can
// stop on one it cannot apply), no revision is spent, no data directory is
// created. Checked against the API's docs: `null` options
// threw TypeErrors, flags such as `prefix: 'yes'` were ignored, a put
// without a value wrote an empty one, and `disarmAlarm` proposed a
// `memberId` of any type, which stopped every member when they applied it;
// `leaseRevoke(undefined)` and `compact(undefined)` did the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, FaultError, isQuorumError } from '../../src/errors.js';
import { KvNode, text, type KvNodeOptions } from '../../src/server/index.js';
import { MemoryNetwork, TcpTransport, type Transport } from '../../src/transport/index.js';
import { CrashableLevel } from '../../src/storage/index.js';
import { KvCluster, assertEachInvalid } from './helpers.js';
import { detachedView, proxiedView, shrunkView } from '../mvcc/helpers.js';
import { tlsFile } from '../transport/clusters.js';

const IDS = ['a', 'b', 'c'];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

test('malformed arguments to KvNode methods fail with QUORUMKV_INVALID_ARGUMENT and change nothing', async () => {
  const c = new KvCluster(IDS, 31);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const f = c.followers()[0]!;
    await c.run(leader.put('p/1', 'one'));
    await c.run(leader.put('p/2', 'two'));
    const lease = await c.run(leader.leaseGrant(60));
    const n = f as Any;
    const wantInvalid: { name: string; call: () => unknown }[] = [
      { name: 'put with null options', call: () => n.put('k', 'v', null) },
      { name: 'put without a value', call: () => n.put('k', undefined) },
      { name: 'put with a flag that is not a boolean', call: () => n.put('k', 'v', { prevKv: 'yes' }) },
      { name: 'get with null options', call: () => n.get('k', null) },
      { name: 'range with prefix "yes"', call: () => n.range({ key: 'p', prefix: 'yes' }) },
      { name: 'range with keysOnly 1', call: () => n.range({ key: 'p', keysOnly: 1 }) },
      { name: 'range of null', call: () => n.range(null) },
      { name: 'delete with prefix "yes"', call: () => n.delete('p', { prefix: 'yes' }) },
      { name: 'delete with null options', call: () => n.delete('p', null) },
      { name: 'txn with a null put', call: () => n.txn({ success: [{ put: null }] }) },
      // an array ran as an empty txn
      { name: 'txn of an array', call: () => n.txn([]) },
      { name: 'txn with a nested array', call: () => n.txn({ success: [{ txn: [] }] }) },
      { name: 'txn compare with prefix 1', call: () => n.txn({ compare: [{ key: 'p', prefix: 1, target: 'VERSION', result: 'EQUAL', version: 0 }] }) },
      { name: 'compact with null options', call: () => n.compact(1, null) },
      { name: 'compact with physical "yes"', call: () => n.compact(1, { physical: 'yes' }) },
      { name: 'compact of no revision', call: () => n.compact(undefined) },
      { name: 'leaseRevoke of no id', call: () => n.leaseRevoke(undefined) },
      { name: 'leaseRevoke of a string id', call: () => n.leaseRevoke('7') },
      { name: 'leaseGrant with null options', call: () => n.leaseGrant(5, null) },
      { name: 'leaseTimeToLive of a string id', call: () => n.leaseTimeToLive('abc') },
      { name: 'leaseTimeToLive with null options', call: () => n.leaseTimeToLive(lease.id, null) },
      { name: 'disarmAlarm with a numeric memberId', call: () => n.disarmAlarm(undefined, { memberId: 5 }) },
      { name: 'disarmAlarm with null options', call: () => n.disarmAlarm(undefined, null) },
      // proposed as it was: over TCP an entry above maxFrameBytes stalled every member
      { name: 'disarmAlarm with a 5 MiB memberId', call: () => n.disarmAlarm(undefined, { memberId: 'x'.repeat(5 * 1024 * 1024) }) },
      { name: 'disarmAlarm with a memberId over 255 bytes', call: () => n.disarmAlarm('NOSPACE', { memberId: 'x'.repeat(256) }) },
      { name: 'addMember with a numeric address', call: () => n.addMember('d', 5) },
      { name: 'addMember with null options', call: () => n.addMember('d', 'h:1', null) },
      { name: 'watch with null options', call: () => n.watch('k', null) },
      { name: 'watch with filters 5', call: () => n.watch('k', { filters: 5 }) },
      { name: 'watch with prefix "yes"', call: () => n.watch('k', { prefix: 'yes' }) },
      // fields of another name: ignored, each would change what the call does
      { name: 'put with prevkv', call: () => n.put('k', 'v', { prevkv: true }) },
      { name: 'get with a prefix (not a get option)', call: () => n.get('p', { prefix: true }) },
      { name: 'get with a rangeEnd (not a get option)', call: () => n.get('p', { rangeEnd: 'q' }) },
      { name: 'get with serialisable', call: () => n.get('k', { serialisable: true }) },
      { name: 'range with maxModRev', call: () => n.range({ key: 'p', prefix: true, maxModRev: 3 }) },
      { name: 'delete with a key option', call: () => n.delete('p/1', { key: 'p/2' }) },
      { name: 'delete with prefx', call: () => n.delete('p', { prefx: true }) },
      { name: 'txn with compares', call: () => n.txn({ compares: [], success: [{ put: { key: 'x', value: 'y' } }] }) },
      { name: 'txn compare with modRev', call: () => n.txn({ compare: [{ key: 'p/1', target: 'MOD', result: 'EQUAL', modRev: 0 }], success: [{ put: { key: 'x', value: 'y' } }] }) },
      { name: 'txn put with leaseId', call: () => n.txn({ success: [{ put: { key: 'x', value: 'y', leaseId: lease.id } }] }) },
      { name: 'txn operation of two kinds', call: () => n.txn({ success: [{ put: { key: 'x', value: 'y' }, delete: { key: 'p/1' } }] }) },
      { name: 'compact with physicial', call: () => n.compact(1, { physicial: true }) },
      { name: 'leaseGrant with ID', call: () => n.leaseGrant(5, { ID: 77 }) },
      { name: 'leaseTimeToLive with attachedKeys', call: () => n.leaseTimeToLive(lease.id, { attachedKeys: true }) },
      { name: 'disarmAlarm with member', call: () => n.disarmAlarm(undefined, { member: 'a' }) },
      { name: 'addMember with isLearner', call: () => n.addMember('d', 'h:1', { isLearner: true }) },
      { name: 'watch with startRev', call: () => n.watch('p/', { prefix: true, startRev: 1 }) },
    ];
    const revision = leader.status().revision;
    const lastIndex = leader.raft.status().lastIndex;
    for (const w of wantInvalid) {
      let outcome: unknown;
      try {
        outcome = await c.run(Promise.resolve().then(w.call));
      } catch (err) {
        outcome = err;
      }
      assert.ok(isQuorumError(outcome, ErrorCode.INVALID_ARGUMENT), `${w.name}: got ${outcome instanceof Error ? `${outcome.name} ${outcome.message}` : JSON.stringify(outcome)}`);
    }
    // nothing changed, and every member still serves writes (none stopped on an entry it could not apply)
    assert.equal(leader.status().revision, revision);
    assert.equal(leader.raft.status().lastIndex, lastIndex, 'nothing was proposed');
    assert.deepEqual(leader.members().voters.sort(), IDS);
    assert.deepEqual((await c.run(leader.range({ key: 'p/', prefix: true }))).kvs.map((kv) => text(kv.value)), ['one', 'two']);
    for (const id of IDS) await c.run(c.node(id).put(`after/${id}`, 'ok'));
    for (const id of IDS) await c.waitFor(() => c.node(id).status().revision === revision + 3, 2_000, `${id} applies the writes`);
  } finally {
    await c.closeAll();
  }
});

test('a malformed field that is an object without a prototype, a Symbol or an object whose toString throws is refused with QUORUMKV_INVALID_ARGUMENT, not a TypeError, and proposes nothing', async () => {
  // before: the check's message was made with String(value), which threw a
  // TypeError on an object without a prototype and ran the caller's toString
  const c = new KvCluster(['a'], 38);
  try {
    await c.startAll();
    const n = (await c.waitLeader()) as Any;
    await c.run(n.put('k', 'v'));
    const revision = n.status().revision;
    const lastIndex = n.raft.status().lastIndex;
    const odd: [string, unknown][] = [
      ['an object without a prototype', Object.create(null)],
      ['a Symbol', Symbol('s')],
      ['an object whose toString throws', { toString: () => { throw new Error('toString ran'); } }],
    ];
    for (const [what, v] of odd) {
      const calls: [string, () => unknown][] = [
        ['range sortOrder', () => n.range({ key: 'k', sortOrder: v })],
        ['range sortTarget', () => n.range({ key: 'k', sortTarget: v })],
        ['txn compare target', () => n.txn({ compare: [{ key: 'k', target: v, result: 'EQUAL' }] })],
        ['txn compare result', () => n.txn({ compare: [{ key: 'k', target: 'VERSION', result: v }] })],
        ['watch filter', () => n.watch('k', { filters: [v] })],
        ['compact', () => n.compact(v)],
        ['leaseGrant TTL', () => n.leaseGrant(v)],
        ['leaseGrant id', () => n.leaseGrant(5, { id: v })],
        ['leaseRevoke', () => n.leaseRevoke(v)],
        ['disarmAlarm', () => n.disarmAlarm(v)],
      ];
      await assertEachInvalid((p) => c.run(p), calls, ` of ${what}`);
    }
    assert.equal(n.status().revision, revision);
    assert.equal(n.raft.status().lastIndex, lastIndex, 'nothing was proposed');
  } finally {
    await c.closeAll();
  }
});

/**
 * On one member holding `k` = `v` (and the `puts` given), each call that
 * `calls(n)` lists fails with QUORUMKV_INVALID_ARGUMENT, the revision stays
 * and nothing is proposed; `after` checks more on the same member.
 */
async function refusedProposingNothing(
  calls: (n: Any) => [string, () => unknown][],
  options: { puts?: [string, string][]; after?: (n: Any, c: KvCluster) => Promise<void> } = {},
): Promise<void> {
  const c = new KvCluster(['a'], 39);
  try {
    await c.startAll();
    const n = (await c.waitLeader()) as Any;
    await c.run(n.put('k', 'v'));
    for (const [key, value] of options.puts ?? []) await c.run(n.put(key, value));
    const revision = n.status().revision;
    const lastIndex = n.raft.status().lastIndex;
    await assertEachInvalid((p) => c.run(p), calls(n));
    await options.after?.(n, c);
    assert.equal(n.status().revision, revision);
    assert.equal(n.raft.status().lastIndex, lastIndex, 'nothing was proposed');
  } finally {
    await c.closeAll();
  }
}

/** Reads `k` and expects `v`, the value it was given before the refused calls. */
async function kStillV(n: Any, c: KvCluster): Promise<void> {
  assert.equal(text(((await c.run(n.get('k'))) as { value: Uint8Array } | undefined)?.value), 'v');
}

test('a key, value or range end that is a view of a detached ArrayBuffer is refused with QUORUMKV_INVALID_ARGUMENT and proposes nothing', async () => {
  // before: its length reads 0, so a put of it threw a TypeError when the
  // request was encoded, a delete with it as range end deleted the single
  // key, and a watch of it watched the key "\0"
  await refusedProposingNothing(
    (n) => [
      ['put value', () => n.put('k', detachedView())],
      ['put key', () => n.put(detachedView(), 'v')],
      ['delete range end', () => n.delete('k', { rangeEnd: detachedView() })],
      ['range end', () => n.range({ key: 'k', rangeEnd: detachedView() })],
      ['txn compare value', () => n.txn({ compare: [{ key: 'k', target: 'VALUE', result: 'EQUAL', value: detachedView() }], success: [{ put: { key: 'k', value: 'x' } }] })],
      ['txn put value', () => n.txn({ success: [{ put: { key: 'k', value: detachedView() } }] })],
      ['watch key', () => n.watch(detachedView())],
      ['watch range end', () => n.watch('k', { rangeEnd: detachedView() })],
    ],
    { after: kStillV },
  );
});

test('a key, value or range end that is a view out of the bounds of a shrunk resizable ArrayBuffer is refused with QUORUMKV_INVALID_ARGUMENT and proposes nothing', async () => {
  // before: its length reads 0 (copying it throws a TypeError, as from a
  // detached view), so such a key with prefix: true read or deleted every
  // key, a range end was taken as absent, a value was stored empty
  await refusedProposingNothing(
    (n) => [
      ['put value', () => n.put('k', shrunkView())],
      ['delete prefix key', () => n.delete(shrunkView(), { prefix: true })],
      ['delete range end', () => n.delete('k', { rangeEnd: shrunkView() })],
      ['range prefix key', () => n.range({ key: shrunkView(), prefix: true })],
      ['range end', () => n.range({ key: 'k', rangeEnd: shrunkView() })],
      ['txn compare value', () => n.txn({ compare: [{ key: 'k', target: 'VALUE', result: 'EQUAL', value: shrunkView() }], success: [{ put: { key: 'k', value: 'x' } }] })],
      ['watch key', () => n.watch(shrunkView())],
    ],
    { puts: [['other', 'w']] },
  );
});

test('a key, value or range end that is a Proxy of a Uint8Array is refused with QUORUMKV_INVALID_ARGUMENT and proposes nothing', async () => {
  // before: it passes instanceof Uint8Array, then reading its byteLength
  // threw a raw TypeError
  await refusedProposingNothing(
    (n) => [
      ['put key', () => n.put(proxiedView(), 'v2')],
      ['put value', () => n.put('k', proxiedView())],
      ['get key', () => n.get(proxiedView())],
      ['delete key', () => n.delete(proxiedView())],
      ['delete range end', () => n.delete('a', { rangeEnd: proxiedView() })],
      ['range key', () => n.range({ key: proxiedView(), prefix: true })],
      ['range end', () => n.range({ key: 'a', rangeEnd: proxiedView() })],
      ['txn compare value', () => n.txn({ compare: [{ key: 'k', target: 'VALUE', result: 'EQUAL', value: proxiedView() }], success: [{ put: { key: 'k', value: 'x' } }] })],
      ['txn put key', () => n.txn({ success: [{ put: { key: proxiedView(), value: 'x' } }] })],
      ['watch key', () => n.watch(proxiedView())],
      ['watch range end', () => n.watch('k', { rangeEnd: proxiedView() })],
    ],
    {
      after: async (n, c) => {
        await assert.rejects(c.run(n.put(proxiedView(), 'v2')), /key is not a Uint8Array itself \(a Proxy of one/);
        await kStillV(n, c);
      },
    },
  );
});

test("a read reads the bytes it was given when called, not those the caller changes them to while it waits for its read index", async () => {
  // before: range, get and read-only txns kept the caller's Uint8Arrays and
  // the store read them only after the read index: a caller reusing its
  // buffer for the next key read another key than the one it asked for
  const c = new KvCluster(['a'], 40);
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  try {
    await c.startAll();
    const n = await c.waitLeader();
    await c.run(n.put('m/a', 'one'));
    await c.run(n.put('m/b', 'two'));
    const key = enc('m/a');
    const rangeEnd = enc('m/c');
    const read = n.range({ key, rangeEnd });
    key.set(enc('m/y'));
    rangeEnd.set(enc('m/z'));
    assert.deepEqual((await c.run(read)).kvs.map((kv) => text(kv.key)), ['m/a', 'm/b']);
    const getKey = enc('m/a');
    const get = n.get(getKey);
    getKey.set(enc('m/z'));
    assert.equal(text((await c.run(get))?.value), 'one');
    const compared = enc('one');
    const ranged = enc('m/b');
    const txn = n.txn({ compare: [{ key: 'm/a', target: 'VALUE', result: 'EQUAL', value: compared }], success: [{ range: { key: ranged } }] });
    compared.set(enc('two'));
    ranged.set(enc('m/z'));
    const res = await c.run(txn);
    assert.equal(res.succeeded, true);
    assert.deepEqual((res.responses[0] as { responseRange: { kvs: { value: Uint8Array }[] } }).responseRange.kvs.map((kv) => text(kv.value)), ['two']);
  } finally {
    await c.closeAll();
  }
});

test('a put may leave its value out with ignoreValue, and a txn put may leave it out for an empty value', async () => {
  const c = new KvCluster(IDS, 32);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await c.run(leader.put('k', 'kept'));
    await c.run(leader.put('k', undefined as unknown as string, { ignoreValue: true }));
    assert.equal(text((await c.run(leader.get('k')))?.value), 'kept');
    await c.run(leader.txn({ success: [{ put: { key: 'e' } }] }));
    const e = await c.run(leader.get('e'));
    assert.equal(e?.value.length, 0, 'a txn put without a value writes an empty one, as etcd reads a protobuf default');
  } finally {
    await c.closeAll();
  }
});

test('a txn operation is one kind: two of range, put, deleteRange and txn are refused with QUORUMKV_INVALID_ARGUMENT, not run as the first (a put and a deleteRange put and deleted nothing)', async () => {
  const c = new KvCluster(['a'], 34);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const n = leader as Any;
    await c.run(leader.put('d', 'x'));
    const revision = n.status().revision;
    const lastIndex = n.raft.status().lastIndex;
    const twoKinds = [
      { put: { key: 'p', value: '1' }, deleteRange: { key: 'd' } },
      { range: { key: 'd' }, txn: { success: [{ put: { key: 'q', value: '1' } }] } },
      { deleteRange: { key: 'd' }, txn: { success: [] } },
    ];
    for (const op of twoKinds) {
      await assert.rejects(
        c.run(Promise.resolve().then(() => n.txn({ success: [op] }))),
        (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT) && /one of range, put, deleteRange, txn/.test((e as Error).message),
        Object.keys(op).join(' and '),
      );
    }
    assert.equal(n.status().revision, revision);
    assert.equal(n.raft.status().lastIndex, lastIndex, 'nothing was proposed');
    assert.equal(text((await c.run(leader.get('d')))?.value), 'x');
    // a kind left undefined is absent, as any option left undefined
    await c.run(n.txn({ success: [{ range: undefined, put: { key: 'p', value: '1' } }] }));
    assert.equal(text((await c.run(leader.get('p')))?.value), '1');
  } finally {
    await c.closeAll();
  }
});

test("a compare carries its target's operand only: another target's operand is refused with QUORUMKV_INVALID_ARGUMENT, not compared as 0 (a VERSION compare given modRevision held for any key of version 0... or none)", async () => {
  const c = new KvCluster(['a'], 35);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const n = leader as Any;
    await c.run(leader.put('k', 'x'));
    const revision = n.status().revision;
    const lastIndex = n.raft.status().lastIndex;
    const mismatched = [
      { key: 'k', target: 'VERSION', result: 'EQUAL', modRevision: revision },
      { key: 'k', target: 'MOD', result: 'EQUAL', modRevision: revision, version: 1 },
      { key: 'k', target: 'VALUE', result: 'EQUAL', version: 1 },
      { key: 'k', target: 'LEASE', result: 'EQUAL', createRevision: 2 },
      { key: 'k', target: 'CREATE', result: 'EQUAL', value: 'x' },
    ];
    for (const cmp of mismatched) {
      await assert.rejects(
        c.run(Promise.resolve().then(() => n.txn({ compare: [cmp], success: [{ put: { key: 'k', value: 'changed' } }] }))),
        (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT) && /operand/.test((e as Error).message),
        JSON.stringify(cmp),
      );
    }
    assert.equal(n.status().revision, revision);
    assert.equal(n.raft.status().lastIndex, lastIndex, 'nothing was proposed');
    // its own operand, or one left undefined, is fine
    const ok = (await c.run(n.txn({ compare: [{ key: 'k', target: 'MOD', result: 'EQUAL', modRevision: revision, version: undefined }], success: [] }))) as { succeeded: boolean };
    assert.equal(ok.succeeded, true);
  } finally {
    await c.closeAll();
  }
});

test('bad KvNode.open options fail with QUORUMKV_INVALID_CONFIG before anything is created', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quorumkv-open-options-'));
  try {
    const base = (dir: string): KvNodeOptions => ({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), dataDir: dir });
    const wantInvalidConfig: { name: string; opts: (dir: string) => unknown; message: RegExp }[] = [
      { name: 'tickMs -1', opts: (d) => ({ ...base(d), tickMs: -1 }), message: /tickMs/ },
      { name: 'an id over 255 bytes', opts: (d) => ({ ...base(d), id: 'x'.repeat(300), members: ['x'.repeat(300)] }), message: /255/ },
      { name: 'maxTxnOps -1', opts: (d) => ({ ...base(d), maxTxnOps: -1 }), message: /maxTxnOps/ },
      { name: 'maxTxnOps "x"', opts: (d) => ({ ...base(d), maxTxnOps: 'x' }), message: /maxTxnOps/ },
      { name: 'maxRequestBytes 0', opts: (d) => ({ ...base(d), maxRequestBytes: 0 }), message: /maxRequestBytes/ },
      { name: 'leaseCheckMs -5', opts: (d) => ({ ...base(d), leaseCheckMs: -5 }), message: /leaseCheckMs/ },
      { name: 'requestTimeoutMs -5', opts: (d) => ({ ...base(d), requestTimeoutMs: -5 }), message: /requestTimeoutMs/ },
      { name: 'snapshotEntries 1.5', opts: (d) => ({ ...base(d), snapshotEntries: 1.5 }), message: /snapshotEntries/ },
      { name: 'electionTicks not above heartbeatTicks', opts: (d) => ({ ...base(d), electionTicks: 2, heartbeatTicks: 2 }), message: /electionTicks/ },
      { name: 'an unknown autoCompaction mode', opts: (d) => ({ ...base(d), autoCompaction: { mode: 'bogus' } }), message: /autoCompaction/ },
      { name: 'a negative retention', opts: (d) => ({ ...base(d), autoCompaction: { mode: 'revision', retention: -10 } }), message: /retention/ },
      { name: 'syncStore "no"', opts: (d) => ({ ...base(d), syncStore: 'no' }), message: /syncStore/ },
      { name: 'watchProgressNotifyIntervalMs -1', opts: (d) => ({ ...base(d), watchProgressNotifyIntervalMs: -1 }), message: /watchProgressNotifyIntervalMs/ },
      { name: 'random that is not a function', opts: (d) => ({ ...base(d), random: 0.5 }), message: /random/ },
      { name: 'a malformed address', opts: (d) => ({ id: 'a', members: { a: 'nohost' }, dataDir: d }), message: /host:port/ },
      // with a TcpTransport of the caller's, it failed with QUORUMKV_INVALID_ARGUMENT once the database was open
      {
        name: "a malformed address with the caller's TcpTransport",
        opts: (d) => ({ id: 'a', members: { a: '127.0.0.1:1', b: 'nohost' }, transport: new TcpTransport({ id: 'a', clusterId: 'quorumkv', listen: { host: '127.0.0.1', port: 0 } }), dataDir: d }),
        message: /member b: .*host:port/,
      },
      { name: 'members that are a string', opts: (d) => ({ ...base(d), members: 'a' }), message: /members/ },
      // a Map's entries are no own keys: it was taken for no member at all
      { name: 'members that are a Map', opts: (d) => ({ ...base(d), members: new Map([['a', '127.0.0.1:1']]) }), message: /Object\.fromEntries/ },
      // founded as they were: a voter whose own open refuses its id (a two-member cluster that never commits),
      // and a lone surrogate made two voters, the id and its UTF-8 rendering
      { name: 'a member id over 255 bytes', opts: (d) => ({ ...base(d), members: ['a', 'x'.repeat(300)] }), message: /member id "x+\.\.\." must be at most 255 UTF-8 bytes/ },
      { name: 'a member id with a lone surrogate', opts: (d) => ({ ...base(d), members: ['a', 'b\uD800'] }), message: /lone surrogate/ },
      // msgpackr without its native reader drops a leading BOM from a string of 65 bytes or more
      { name: 'a member id beginning with U+FEFF', opts: (d) => ({ ...base(d), members: ['a', '\uFEFF' + 'n'.repeat(70)] }), message: /U\+FEFF/ },
      { name: 'a clusterId beginning with U+FEFF', opts: (d) => ({ ...base(d), clusterId: '\uFEFF' + 'c'.repeat(70) }), message: /clusterId must not begin with U\+FEFF/ },
      { name: 'a clusterId that is a number', opts: (d) => ({ ...base(d), clusterId: 7 }), message: /clusterId/ },
      // carried in every TCP handshake: one over 16 KiB had every handshake refused as too large, and one with
      // a lone surrogate arrived as U+FFFD and did not match; the cluster never formed
      { name: 'a clusterId of 20,000 bytes', opts: (d) => ({ ...base(d), clusterId: 'c'.repeat(20_000) }), message: /clusterId must be at most 255 UTF-8 bytes/ },
      { name: 'a clusterId with a lone surrogate', opts: (d) => ({ ...base(d), clusterId: 'c\uD800' }), message: /clusterId must be well-formed Unicode/ },
      { name: 'a clock without its methods', opts: (d) => ({ ...base(d), clock: { now: 5 } }), message: /clock/ },
      // it failed with QUORUMKV_STORAGE_IO ("db.open is not a function")
      { name: 'a db that is not a database', opts: (d) => ({ ...base(d), dataDir: undefined, db: {} }), message: /db must be an abstract-level database/ },
      { name: 'a transport without its methods', opts: (d) => ({ ...base(d), transport: { send: 1 } }), message: /transport/ },
      // its messages were all dropped by the transport (their from is not its id): the others went on without the member
      { name: "a transport of another member's id", opts: (d) => ({ ...base(d), transport: new MemoryNetwork({ seed: 1 }).transport('b') }), message: /transport\.id must be this member's id a, got b/ },
      // ignored with a transport of the caller's: a member meant to be on mutual TLS talked plain TCP
      { name: 'tls with a transport of your own', opts: (d) => ({ ...base(d), tls: { key: tlsFile('node-a.key'), cert: tlsFile('node-a.crt'), ca: tlsFile('ca.crt') } }), message: /tls configures the default TCP transport/ },
      { name: 'maxSnapshotBytes with a transport of your own', opts: (d) => ({ ...base(d), maxSnapshotBytes: 1024 }), message: /maxSnapshotBytes configures the default TCP transport/ },
      { name: 'tls that is a string', opts: (d) => ({ id: 'a', members: { a: '127.0.0.1:1' }, dataDir: d, tls: 'yes' }), message: /tls/ },
      { name: 'tls whose PEM does not parse', opts: (d) => ({ id: 'a', members: { a: '127.0.0.1:1' }, dataDir: d, tls: { key: 'x', cert: 'y', ca: 'z' } }), message: /tls/ },
      { name: 'a misspelled option (tickMS)', opts: (d) => ({ ...base(d), tickMS: 10 }), message: /unknown option "tickMS" \(did you mean tickMs\?\)/ },
      { name: 'an option of no known name', opts: (d) => ({ ...base(d), snapshotEvery: 100 }), message: /unknown option "snapshotEvery" \(known: id, members/ },
      { name: 'a misspelled autoCompaction field', opts: (d) => ({ ...base(d), autoCompaction: { mode: 'periodic', retentionMs: 1000, intervalMS: 10 } }), message: /autoCompaction: unknown option "intervalMS"/ },
      { name: "a revision retention's periodic field", opts: (d) => ({ ...base(d), autoCompaction: { mode: 'revision', retention: 5, retentionMs: 10 } }), message: /unknown option "retentionMs"/ },
      { name: 'a misspelled metrics field', opts: (d) => ({ ...base(d), metrics: { registery: {} } }), message: /metrics: unknown option "registery"/ },
      { name: 'metrics that is a number', opts: (d) => ({ ...base(d), metrics: 5 }), message: /metrics/ },
      {
        name: 'tls with a field of another name',
        opts: (d) => ({ id: 'a', members: { a: '127.0.0.1:1' }, dataDir: d, tls: { key: tlsFile('node-a.key'), cert: tlsFile('node-a.crt'), ca: tlsFile('ca.crt'), passphrase: 'x' } }),
        message: /tls: unknown option "passphrase"/,
      },
      {
        name: "tls with another node's key",
        opts: (d) => ({ id: 'a', members: { a: '127.0.0.1:1' }, dataDir: d, tls: { key: tlsFile('node-b.key'), cert: tlsFile('node-a.crt'), ca: tlsFile('ca.crt') } }),
        message: /mismatch/,
      },
    ];
    for (const [i, w] of wantInvalidConfig.entries()) {
      const dir = join(root, `m${i}`);
      await assert.rejects(
        KvNode.open(w.opts(dir) as KvNodeOptions),
        (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && w.message.test((e as Error).message),
        w.name,
      );
      assert.equal(existsSync(dir), false, `${w.name}: the data directory was created`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an option left undefined is its default, whatever its name: the open succeeds', async () => {
  const node = await KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db: new MemoryLevel({ keyEncoding: 'view', valueEncoding: 'view' }), tickMs: 10, ...({ tickMS: undefined } as object) });
  await node.close();
});

test('a closed member refuses serializable reads, membership changes, keep-alives and progress requests with QUORUMKV_NODE_CLOSED, and its watches end with a cancelled response', async () => {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const node = await KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db, tickMs: 10 });
  try {
    while (!node.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
    const w = node.watch('k');
    await node.put('k', '1');
    await node.close();
    const seen: string[] = [];
    for await (const res of w) {
      for (const e of res.events) seen.push(`${e.type} ${text(e.kv.key)}@${e.kv.modRevision}`);
      if (res.canceled) seen.push(`canceled: ${res.cancelReason}`);
    }
    assert.deepEqual(seen, ['PUT k@2', 'canceled: mvcc: store closed']);
    await assert.rejects(node.get('k', { serializable: true }), (e: unknown) => isQuorumError(e, ErrorCode.NODE_CLOSED));
    await assert.rejects(node.leaseTimeToLive(1), (e: unknown) => isQuorumError(e, ErrorCode.NODE_CLOSED));
    // every other call too, whatever its arguments (they were checked first)
    const closed = (e: unknown): boolean => isQuorumError(e, ErrorCode.NODE_CLOSED);
    await assert.rejects(node.leaseKeepAlive(0), closed);
    await assert.rejects(node.promoteMember('a'), closed);
    await assert.rejects(node.removeMember('zz'), closed);
    await assert.rejects(node.addMember('a'), closed);
    await assert.rejects(node.moveLeader('a'), closed);
    assert.throws(() => node.requestProgress(), closed);
  } finally {
    await node.close();
    await db.close();
  }
});

test('a txn nested deeper than 128 levels is refused with QUORUMKV_INVALID_ARGUMENT, whatever maxTxnOps allows', async () => {
  // each level costs stack on every member that applies it; 10,000 levels
  // overflowed the proposer's stack with a RangeError
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const node = await KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db, tickMs: 10, maxTxnOps: 1_000_000 });
  try {
    while (!node.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
    const nested = (depth: number): Any => {
      let t: Any = { success: [{ put: { key: 'deep', value: String(depth) } }] };
      for (let d = 1; d < depth; d++) t = { success: [{ txn: t }] };
      return t;
    };
    assert.equal((await node.txn(nested(128))).succeeded, true);
    for (const depth of [129, 10_000]) {
      await assert.rejects(node.txn(nested(depth)), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT) && /nested deeper than 128/.test((e as Error).message), `${depth} levels`);
    }
    assert.equal(text((await node.get('deep'))?.value), '128');
  } finally {
    await node.close();
    await db.close();
  }
});

test('the cluster id is kept with the data from the first open: left out later it is the same, and another one is refused with QUORUMKV_INVALID_CONFIG', async () => {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const open = (clusterId?: string): Promise<KvNode> =>
    KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db, tickMs: 10, ...(clusterId === undefined ? {} : { clusterId }) });
  try {
    const first = await open('prod');
    assert.equal(first.status().header.clusterId, 'prod');
    await first.close();
    const again = await open();
    assert.equal(again.status().header.clusterId, 'prod', 'left out: the id the data holds');
    await again.close();
    await assert.rejects(open('other'), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && /belongs to cluster prod/.test((e as Error).message));
    // a member first opened without one keeps the default the same way
    const fresh = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    const d = await KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db: fresh, tickMs: 10 });
    await d.close();
    await assert.rejects(
      KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db: fresh, tickMs: 10, clusterId: 'prod' }),
      (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG),
    );
    await fresh.close();
  } finally {
    await db.close();
  }
});

test('after an open that failed, the member opens again on the same MemoryNetwork with a new transport of its id', async () => {
  const net = new MemoryNetwork({ seed: 1 });
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const open = (clusterId: string): Promise<KvNode> => KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), db, tickMs: 10, clusterId });
  try {
    await (await open('prod')).close();
    await assert.rejects(open('other'), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG));
    // the failed open left its transport unstarted, which held the id on the network for good
    const again = await open('prod');
    assert.equal(again.status().header.clusterId, 'prod');
    await again.close();
  } finally {
    await db.close();
  }
});

test("a member's data is refused to another member id with QUORUMKV_INVALID_CONFIG (it holds the first member's log and votes)", async () => {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const open = (id: string): Promise<KvNode> => KvNode.open({ id, members: [id], transport: new MemoryNetwork({ seed: 1 }).transport(id), db, tickMs: 10 });
  try {
    await (await open('a')).close();
    await assert.rejects(open('b'), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_CONFIG) && /belongs to member a/.test((e as Error).message));
    const again = await open('a');
    assert.equal(again.status().header.memberId, 'a');
    await again.close();
  } finally {
    await db.close();
  }
});

test('a first open that fails claims nothing: the data can then be opened under another id or cluster id', async () => {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const net = new MemoryNetwork({ seed: 1 });
  const failing = (id: string): Transport =>
    new Proxy(net.transport(id), {
      get(t, p) {
        if (p === 'start') return () => Promise.reject(new FaultError(ErrorCode.LISTEN_FAILED, 'port in use'));
        const v = Reflect.get(t, p, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  try {
    await assert.rejects(KvNode.open({ id: 'typo', members: ['typo'], transport: failing('typo'), db, tickMs: 10, clusterId: 'wrong' }), (e: unknown) =>
      isQuorumError(e, ErrorCode.LISTEN_FAILED),
    );
    const a = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), db, tickMs: 10, clusterId: 'prod' });
    assert.equal(a.status().header.clusterId, 'prod');
    await a.close();
  } finally {
    await db.close();
  }
});

test('a first open that fails saving the cluster id claims nothing: the member id is not kept without it', async () => {
  // before: the member id was saved, then the cluster id; a failure (or a
  // crash) in between left the data claimed by the member though neither
  // its Raft log nor anything else of it had been written
  class NoClusterIdLevel extends CrashableLevel<Uint8Array, Uint8Array> {
    failing = true;
    private refuse(keys: Uint8Array[]): Promise<void> | undefined {
      if (!this.failing || !keys.some((k) => Buffer.from(k).toString('latin1') === '!server!clusterId')) return undefined;
      return Promise.reject(new Error('disk full'));
    }
    override async _put(key: Uint8Array, value: Uint8Array, options: { sync?: boolean }): Promise<void> {
      return this.refuse([key]) ?? super._put(key, value, options);
    }
    override async _batch(ops: { type: 'put' | 'del'; key: Uint8Array; value?: Uint8Array }[], options: { sync?: boolean }): Promise<void> {
      return this.refuse(ops.map((op) => op.key)) ?? super._batch(ops, options);
    }
  }
  const db = new NoClusterIdLevel({ keyEncoding: 'view', valueEncoding: 'view' });
  const net = new MemoryNetwork({ seed: 1 });
  try {
    await assert.rejects(KvNode.open({ id: 'typo', members: ['typo'], transport: net.transport('typo'), db, tickMs: 10 }), (e: unknown) =>
      isQuorumError(e, ErrorCode.STORAGE_IO) && /cannot save the member and cluster ids/.test((e as Error).message),
    );
    assert.deepEqual(await db.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' }).keys().all(), [], 'nothing of the Raft log was written');
    db.failing = false;
    const a = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), db, tickMs: 10, clusterId: 'prod' });
    assert.equal(a.status().header.memberId, 'a');
    await a.close();
  } finally {
    await db.close();
  }
});

test("a crash before the member id was durable, once the Raft log held state, left the data to any id: the id is now durable before the log's first write", async () => {
  // the ids' write is slow (the fsync of the store's database) and the
  // machine loses power as soon as the Raft log's first synced write is on
  // disk (the bootstrap entries and a HardState of term 1)
  const latin1 = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
  class SlowIdsLevel extends CrashableLevel<Uint8Array, Uint8Array> {
    lost = false;
    override async _put(key: Uint8Array, value: Uint8Array, options: { sync?: boolean }): Promise<void> {
      if (latin1(key).startsWith('!server!')) {
        const crashes = this.crashes;
        await new Promise((r) => setTimeout(r, 50));
        if (this.crashes !== crashes) throw new Error('power lost');
      }
      return super._put(key, value, options);
    }
    override async _batch(ops: { type: 'put' | 'del'; key: Uint8Array; value?: Uint8Array }[], options: { sync?: boolean }): Promise<void> {
      if (ops.some((op) => latin1(op.key).startsWith('!server!'))) {
        const crashes = this.crashes;
        await new Promise((r) => setTimeout(r, 50));
        if (this.crashes !== crashes) throw new Error('power lost');
      }
      await super._batch(ops, options);
      if (!this.lost && options?.sync === true && ops.some((op) => latin1(op.key).startsWith('!raft!'))) {
        this.lost = true;
        void this.crash();
      }
    }
  }
  const db = new SlowIdsLevel({ keyEncoding: 'view', valueEncoding: 'view' });
  const open = (id: string): Promise<KvNode> => KvNode.open({ id, members: [id], transport: new MemoryNetwork({ seed: 1 }).transport(id), db, tickMs: 10 });
  try {
    const first = await open('a').catch(() => undefined);
    for (const deadline = Date.now() + 5000; !db.lost && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 5));
    assert.ok(db.lost, 'the Raft log was written');
    await first?.close().catch(() => undefined);
    await db.crash(); // waits for the one under way: only what was durable then remains
    await db.open();
    const raft = await db.sublevel('raft', { keyEncoding: 'view', valueEncoding: 'view' }).keys().all();
    assert.ok(raft.length > 0, "member a's Raft log outlived the crash");
    const other = await open('b').catch((e: unknown) => e);
    if (other instanceof KvNode) await other.close();
    assert.ok(isQuorumError(other, ErrorCode.INVALID_CONFIG) && /belongs to member a/.test(other.message), other instanceof KvNode ? "member b opened member a's data" : String(other));
    const again = await open('a');
    assert.equal(again.status().header.memberId, 'a');
    await again.close();
  } finally {
    await db.close();
  }
});

test('an open that fails saving the member ids after Raft started applying fails and closes what it opened (it hung: the close waited for an apply that waited for the member)', async () => {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  // the ids' sublevel (utf8 values) fails its writes, after a while as a disk does
  const sublevel = db.sublevel.bind(db) as (name: string, options: { valueEncoding?: string }) => { put: (...a: unknown[]) => Promise<void>; batch: (...a: unknown[]) => Promise<void> };
  Object.assign(db, {
    sublevel: (name: string, options: { valueEncoding?: string }) => {
      const s = sublevel(name, options);
      if (name === 'server' && options.valueEncoding === 'utf8') {
        s.put = () => new Promise((_, reject) => setTimeout(() => reject(new Error('disk full')), 50));
        s.batch = s.put;
      }
      return s;
    },
  });
  try {
    const opened = KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db, tickMs: 10 });
    const outcome = await Promise.race([
      opened.then(
        () => 'opened',
        (e: unknown) => (isQuorumError(e, ErrorCode.STORAGE_IO) ? 'failed' : `failed with ${String(e)}`),
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('still pending after 5 s'), 5000).unref()),
    ]);
    assert.equal(outcome, 'failed');
  } finally {
    await db.close();
  }
});

test('moveLeader on a follower is QUORUMKV_NOT_LEADER even towards the leader itself (etcd ErrNotLeader); addMember refuses an address that is not host:port on TCP', async () => {
  const c = new KvCluster(IDS, 37);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const f = c.followers()[0]!;
    await assert.rejects(c.run(f.moveLeader(leader.id)), (e: unknown) => isQuorumError(e, ErrorCode.NOT_LEADER));
    // a transferee that is no voter: etcd's ErrBadLeaderTransferee
    for (const to of ['zz', '']) {
      await assert.rejects(c.run(leader.moveLeader(to)), (e: unknown) => isQuorumError(e, ErrorCode.BAD_LEADER_TRANSFEREE) && /bad leader transferee/.test((e as Error).message), JSON.stringify(to));
    }
    // not an id at all: bad input
    for (const to of [123, undefined, null, { id: 'a' }]) {
      await assert.rejects(c.run(leader.moveLeader(to as never)), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT), String(to));
    }
  } finally {
    await c.closeAll();
  }
  const { freePort } = await import('../../examples/lib/free-port.js');
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const node = await KvNode.open({ id: 'a', members: { a: `127.0.0.1:${await freePort()}` }, db, tickMs: 10 });
  try {
    while (!node.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
    for (const bad of ['nohost', 'host:port', '127.0.0.1:99999x', '::1:80']) {
      await assert.rejects(node.addMember('b', bad), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT), bad);
    }
    // no address: no member could send to the new one (added as a second voter, it stalled the cluster for good)
    await assert.rejects(node.addMember('b'), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT) && /needs its address/.test((e as Error).message));
    await assert.rejects(node.addMember('b', undefined, { learner: true }), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT));
    assert.deepEqual(node.members(), { voters: ['a'], learners: [] });
    await node.put('k', 'still a quorum of one');
  } finally {
    await node.close();
    await db.close();
  }
});

test('addMember refuses an address over 1024 UTF-8 bytes and proposes nothing (the change, replicated in a frame too large for TCP, stalled every member)', async () => {
  // before: a 5 MiB address was proposed as it was; over the default TCP
  // transport its MsgApp was above maxFrameBytes, never sent, and no write
  // committed after it on any member
  const c = new KvCluster(IDS, 41);
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const f = c.followers()[0]!;
    await c.run(leader.put('k', 'v'));
    const lastIndex = leader.raft.status().lastIndex;
    const huge = `${'h'.repeat(5 * 1024 * 1024)}:2380`;
    const tooLong = `${'h'.repeat(1020)}:2380`; // 1025 bytes
    const multiByte = `${'é'.repeat(511)}:2380`; // 1022 + 5 bytes
    for (const [name, address] of [['huge', huge], ['1025 bytes', tooLong], ['1027 bytes in UTF-8', multiByte]] as const) {
      for (const n of [leader, f]) {
        await assert.rejects(n.addMember('d', address, { learner: true }), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT), `${name} on ${n.id}`);
        await assert.rejects(n.raft.addVoter('d', address), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT), `${name} on ${n.id}'s RaftNode`);
      }
    }
    await c.clock.advanceAsync(50);
    assert.equal(leader.raft.status().lastIndex, lastIndex, 'nothing was proposed');
    assert.deepEqual(leader.members(), { voters: IDS, learners: [] });
    // 1024 bytes is taken
    await c.run(f.addMember('d', `${'h'.repeat(1019)}:2380`, { learner: true }));
    assert.deepEqual(leader.members().learners, ['d']);
    await c.run(f.put('k', 'after'));
  } finally {
    await c.closeAll();
  }
});

test('a member stopped by a fatal error refuses serializable reads, watches and progress requests with QUORUMKV_NODE_CLOSED, and its watches end with a cancelled response', async () => {
  // before: its Raft node had stopped (it applies nothing more), yet it
  // answered serializable reads from its ever staler store, opened new
  // watches, and its open watches never ended nor heard of anything again
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
  const node = await KvNode.open({ id: 'a', members: ['a'], transport: new MemoryNetwork({ seed: 1 }).transport('a'), db, tickMs: 10 });
  try {
    while (!node.raft.isLeader) await new Promise((r) => setTimeout(r, 5));
    const w = node.watch('k');
    await node.put('k', '1');
    const errors: Error[] = [];
    node.on('error', (e) => errors.push(e));
    // an entry the member cannot apply (as one of a newer version would be): it stops on it
    await assert.rejects(node.raft.propose(new Uint8Array([200])), (e: unknown) => isQuorumError(e, ErrorCode.NODE_CLOSED));
    assert.equal(errors.length, 1);
    const seen: string[] = [];
    const ended = (async () => {
      for await (const res of w) {
        for (const e of res.events) seen.push(`${e.type} ${text(e.kv.key)}@${e.kv.modRevision}`);
        if (res.canceled) seen.push(`canceled: ${res.cancelReason}`);
      }
      return 'ended';
    })();
    const outcome = await Promise.race([ended, new Promise<string>((resolve) => setTimeout(() => resolve('still open after 2 s'), 2000).unref())]);
    assert.equal(outcome, 'ended', 'the watch ends');
    assert.equal(seen.length, 2, seen.join('; '));
    assert.equal(seen[0], 'PUT k@2');
    assert.match(seen[1]!, /^canceled: .*fatal error.*unknown server entry kind/);
    const closed = (e: unknown): boolean => isQuorumError(e, ErrorCode.NODE_CLOSED);
    await assert.rejects(node.get('k', { serializable: true }), closed);
    await assert.rejects(node.range({ key: 'k', serializable: true }), closed);
    assert.throws(() => node.watch('k'), closed);
    assert.throws(() => node.requestProgress(), closed);
    await assert.rejects(node.leaseTimeToLive(1), closed);
    await assert.rejects(node.put('k', '2'), closed);
    // status and maintenance still answer
    assert.equal(node.status().memberId, 'a');
    assert.equal((await node.hashKv()).revision, 2);
  } finally {
    await node.close();
    await db.close();
  }
});

test('text() reads bytes or undefined; a string, null or a number is refused with QUORUMKV_INVALID_ARGUMENT, not a bare TypeError', () => {
  assert.equal(text(new TextEncoder().encode('\ufeffé')), '\ufeffé');
  assert.equal(text(undefined), '');
  for (const bad of ['abc', null, 42, {}]) {
    assert.throws(() => text(bad as Any), (err: unknown) => isQuorumError(err, ErrorCode.INVALID_ARGUMENT), String(bad));
  }
});
