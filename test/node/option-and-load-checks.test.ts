// Bad input to RaftNode.create and KvNode.open gets a typed error with a
// stable code and changes nothing:
// - `null` for a Raft option of RaftNode.create was taken for "use the
//   default" (electionTicks, heartbeatTicks, preVote, checkQuorum,
//   readOnlyOption, disableProposalForwarding), while its other options and
//   KvNode.open refuse null;
// - fractional milliseconds (and a fractional quotaBackendBytes) opened
//   without error, though clocks keep no fractions (a virtual clock fires a
//   1e-9 ms timer at 1 ms) and etcd takes these as integers;
// - a custom LogStorage whose load() returned bad state made create fail
//   with QUORUMKV_INVALID_ARGUMENT or a raw TypeError, or accepted it (a NaN
//   term), instead of QUORUMKV_CORRUPT_LOG as documented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, FaultError, UsageError, isQuorumError } from '../../src/errors.js';
import { RaftNode, VirtualClock, wrapSnapshot, type ApplyEntry, type RaftNodeOptions, type StateMachine } from '../../src/node/index.js';
import type { Entry, HardState, Snapshot } from '../../src/raftpb/index.js';
import { KvNode, type KvNodeOptions } from '../../src/server/index.js';
import type { LoadedLogState, LogStorage, LogStorageStatus } from '../../src/storage/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

/** A state machine that applies nothing and holds nothing. */
class NullMachine implements StateMachine<undefined> {
  appliedIndex(): number {
    return 0;
  }
  apply(entries: ApplyEntry[]): undefined[] {
    return entries.map(() => undefined);
  }
  snapshot(): Uint8Array {
    return new Uint8Array();
  }
  restore(): void {}
}

/** A LogStorage whose load() resolves with whatever `state` gives (a bad state, for the tests). */
class FixedLoadStorage implements LogStorage {
  status: LogStorageStatus = 'open';
  constructor(private readonly state: () => unknown) {}
  async load(): Promise<LoadedLogState> {
    return this.state() as LoadedLogState;
  }
  async save(): Promise<void> {}
  async compact(): Promise<void> {}
  async close(): Promise<void> {
    this.status = 'closed';
  }
}

const EMPTY_HS: HardState = { term: 0, vote: '', commit: 0 };

function entry(index: number, term: number): Entry {
  return { index, term, type: 'Normal', data: new Uint8Array() };
}

function snapshot(index: number, term: number): Snapshot {
  return { metadata: { index, term, confState: { voters: ['a'], learners: [] } }, data: wrapSnapshot({ addresses: {}, data: new Uint8Array() }) };
}

/** Options of a lone member 'a' on a MemoryNetwork, a virtual clock and a storage holding nothing. */
function raftOptions(extra: Record<string, unknown> = {}, storage: LogStorage = new FixedLoadStorage(() => ({ hardState: EMPTY_HS, snapshot: undefined, entries: [] }))): RaftNodeOptions<undefined> {
  return {
    id: 'a',
    peers: ['a'],
    storage,
    transport: new MemoryNetwork({ seed: 1 }).transport('a'),
    stateMachine: new NullMachine(),
    clock: new VirtualClock(),
    ...extra,
  } as RaftNodeOptions<undefined>;
}

/** The error `create` fails with; a node it opened is closed and the test fails. */
async function createError(opts: RaftNodeOptions<undefined>): Promise<unknown> {
  let node: RaftNode<undefined>;
  try {
    node = await RaftNode.create(opts);
  } catch (err) {
    return err;
  }
  await node.close();
  return assert.fail('RaftNode.create opened a node');
}

async function kvOpenError(extra: Record<string, unknown>): Promise<unknown> {
  let node: KvNode;
  try {
    node = await KvNode.open(kvOptions(extra));
  } catch (err) {
    return err;
  }
  await node.close();
  return assert.fail('KvNode.open opened a node');
}

function kvOptions(extra: Record<string, unknown>): KvNodeOptions {
  return {
    id: 'a',
    members: ['a'],
    transport: new MemoryNetwork({ seed: 1 }).transport('a'),
    db: new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }),
    clock: new VirtualClock(),
    ...extra,
  } as KvNodeOptions;
}

function assertInvalidConfig(err: unknown, name: string, message: RegExp, what: string): void {
  assert.ok(err instanceof UsageError, `${what}: a UsageError, got ${String(err)}`);
  assert.equal(err.code, ErrorCode.INVALID_CONFIG, `${what}: ${err.message}`);
  assert.ok(err.message.includes(name), `${what}: the message names ${name}: ${err.message}`);
  assert.match(err.message, message, what);
}

test('RaftNode.create refuses null for electionTicks, heartbeatTicks, preVote, checkQuorum, readOnlyOption and disableProposalForwarding with QUORUMKV_INVALID_CONFIG, as its other options', async () => {
  for (const name of ['electionTicks', 'heartbeatTicks', 'preVote', 'checkQuorum', 'readOnlyOption', 'disableProposalForwarding']) {
    let loaded = false;
    const storage = new FixedLoadStorage(() => {
      loaded = true;
      return { hardState: EMPTY_HS, snapshot: undefined, entries: [] };
    });
    const err = await createError(raftOptions({ [name]: null }, storage));
    assertInvalidConfig(err, name, /null/, `${name}: null`);
    assert.equal(loaded, false, `${name}: refused before the storage is loaded`);
  }
  // left out (undefined): the defaults
  const defaults = raftOptions({
    electionTicks: undefined,
    heartbeatTicks: undefined,
    preVote: undefined,
    checkQuorum: undefined,
    readOnlyOption: undefined,
    disableProposalForwarding: undefined,
  });
  const node = await RaftNode.create(defaults);
  await node.close();
});

test('RaftNode.create refuses a fractional tickMs, proposalTimeoutMs or readTimeoutMs with QUORUMKV_INVALID_CONFIG; whole ones open', async () => {
  for (const [name, v] of [
    ['tickMs', 0.5],
    ['tickMs', 100.25],
    ['proposalTimeoutMs', 1.5],
    ['proposalTimeoutMs', 1e-9],
    ['readTimeoutMs', 2.5],
    ['readTimeoutMs', 9_999.9],
  ] as const) {
    assertInvalidConfig(await createError(raftOptions({ [name]: v })), name, /whole number of ms/, `${name} ${v}`);
  }
  for (const [name, v] of [
    ['tickMs', 0],
    ['tickMs', Number.NaN],
    ['proposalTimeoutMs', Infinity],
    ['readTimeoutMs', -1],
    ['readTimeoutMs', '10' as Any],
  ] as const) {
    assertInvalidConfig(await createError(raftOptions({ [name]: v })), name, /must be/, `${name} ${String(v)}`);
  }
  for (const extra of [{ tickMs: 1, proposalTimeoutMs: 1, readTimeoutMs: 1 }, { tickMs: 10, proposalTimeoutMs: 1_500, readTimeoutMs: 2_500 }]) {
    const node = await RaftNode.create(raftOptions(extra));
    await node.close();
  }
});

test('KvNode.open refuses fractional milliseconds and a fractional quotaBackendBytes with QUORUMKV_INVALID_CONFIG; whole ones open', async () => {
  const fractional: [string, Record<string, unknown>, RegExp][] = [
    ['tickMs', { tickMs: 0.5 }, /whole number of ms/],
    ['requestTimeoutMs', { requestTimeoutMs: 1.5 }, /whole number of ms/],
    ['leaseCheckMs', { leaseCheckMs: 0.25 }, /whole number of ms/],
    ['corruptCheckMs', { corruptCheckMs: 2.5 }, /whole number of ms/],
    ['slowFsyncMs', { slowFsyncMs: 0.1 }, /whole number of ms/],
    ['backendBatchIntervalMs', { backendBatchIntervalMs: 0.3 }, /whole number of ms/],
    ['watchProgressNotifyIntervalMs', { watchProgressNotifyIntervalMs: 0.7 }, /whole number of ms/],
    ['quotaBackendBytes', { quotaBackendBytes: 1.5 }, /whole number of bytes/],
    ['autoCompaction.retentionMs', { autoCompaction: { mode: 'periodic', retentionMs: 1_000.5 } }, /whole number of ms/],
    ['autoCompaction.intervalMs', { autoCompaction: { mode: 'periodic', retentionMs: 60_000, intervalMs: 0.5 } }, /whole number of ms/],
    ['autoCompaction.intervalMs', { autoCompaction: { mode: 'revision', retention: 10, intervalMs: 1_000.5 } }, /whole number of ms/],
  ];
  for (const [name, extra, message] of fractional) {
    assertInvalidConfig(await kvOpenError(extra), name, message, JSON.stringify(extra));
  }
  const whole: Record<string, unknown>[] = [
    { tickMs: 1, electionTicks: 10, requestTimeoutMs: 1, leaseCheckMs: 1, corruptCheckMs: 1, slowFsyncMs: 1, backendBatchIntervalMs: 1, watchProgressNotifyIntervalMs: 1, quotaBackendBytes: 1 },
    { tickMs: 10, requestTimeoutMs: 1_500, leaseCheckMs: 250, corruptCheckMs: 2_500, slowFsyncMs: 100, backendBatchIntervalMs: 0, watchProgressNotifyIntervalMs: 0, quotaBackendBytes: 1024 * 1024 * 1024 },
    { autoCompaction: { mode: 'periodic', retentionMs: 60_000, intervalMs: 1_000 } },
    { autoCompaction: { mode: 'revision', retention: 10, intervalMs: 1_000 } },
  ];
  for (const extra of whole) {
    const node = await KvNode.open(kvOptions(extra));
    await node.close();
  }
});

test('RaftNode.create fails with FaultError QUORUMKV_CORRUPT_LOG when a custom LogStorage loads bad state', async () => {
  const cases: [string, () => unknown][] = [
    ['decreasing terms', () => ({ hardState: { term: 2, vote: '', commit: 0 }, snapshot: undefined, entries: [entry(1, 2), entry(2, 1)] })],
    ['a gap between entries', () => ({ hardState: { term: 1, vote: '', commit: 0 }, snapshot: undefined, entries: [entry(1, 1), entry(3, 1)] })],
    ['entries that do not start at index 1 without a snapshot', () => ({ hardState: { term: 1, vote: '', commit: 0 }, snapshot: undefined, entries: [entry(3, 1)] })],
    ['a gap after the snapshot', () => ({ hardState: { term: 1, vote: '', commit: 5 }, snapshot: snapshot(5, 1), entries: [entry(8, 1)] })],
    ['an entry after the snapshot with a term below its term', () => ({ hardState: { term: 3, vote: '', commit: 5 }, snapshot: snapshot(5, 3), entries: [entry(6, 2)] })],
    ['entries null', () => ({ hardState: EMPTY_HS, snapshot: undefined, entries: null })],
    ['entries missing', () => ({ hardState: EMPTY_HS, snapshot: undefined })],
    ['an entry that is not an object', () => ({ hardState: { term: 1, vote: '', commit: 0 }, snapshot: undefined, entries: [null] })],
    ['load() resolving undefined', () => undefined],
    ['load() resolving null', () => null],
    ['load() resolving a number', () => 42],
    ['hardState.term NaN', () => ({ hardState: { term: Number.NaN, vote: '', commit: 0 }, snapshot: undefined, entries: [] })],
    ['hardState.commit -1', () => ({ hardState: { term: 1, vote: '', commit: -1 }, snapshot: undefined, entries: [entry(1, 1)] })],
    ['hardState.vote a number', () => ({ hardState: { term: 1, vote: 7, commit: 0 }, snapshot: undefined, entries: [] })],
    ['hardState missing', () => ({ snapshot: undefined, entries: [] })],
    ['a snapshot without metadata', () => ({ hardState: EMPTY_HS, snapshot: { data: new Uint8Array() }, entries: [] })],
    ['a snapshot without a ConfState', () => ({ hardState: { term: 1, vote: '', commit: 5 }, snapshot: { metadata: { index: 5, term: 1 }, data: wrapSnapshot({ addresses: {} }) }, entries: [] })],
    ['a saved commit beyond the log', () => ({ hardState: { term: 1, vote: '', commit: 3 }, snapshot: undefined, entries: [entry(1, 1)] })],
  ];
  for (const [name, state] of cases) {
    // without peers: the node would otherwise bootstrap a storage it takes for empty
    const err = await createError(raftOptions({ peers: undefined }, new FixedLoadStorage(state)));
    assert.ok(err instanceof FaultError, `${name}: a FaultError, got ${String(err)}`);
    assert.ok(isQuorumError(err, ErrorCode.CORRUPT_LOG), `${name}: ${err.code}: ${err.message}`);
    assert.match(err.message, /storage\.load\(\) returned|out of range/, name);
  }
});

test('RaftNode.create opens a custom LogStorage whose load() returns good state: a snapshot and the entries after it, entries that overlap it, or a placeholder snapshot at index 0', async () => {
  for (const state of [
    { hardState: { term: 2, vote: 'a', commit: 6 }, snapshot: snapshot(5, 1), entries: [entry(6, 2)] },
    { hardState: { term: 2, vote: 'a', commit: 5 }, snapshot: snapshot(5, 1), entries: [entry(4, 1), entry(5, 1), entry(6, 2)] },
    { hardState: { term: 1, vote: 'a', commit: 2 }, snapshot: undefined, entries: [entry(1, 1), entry(2, 1)] },
    // a placeholder snapshot at index 0, even without a membership, is none (it opened before the load checks)
    { hardState: { term: 1, vote: 'a', commit: 2 }, snapshot: { data: new Uint8Array(0), metadata: { index: 0, term: 0 } }, entries: [entry(1, 1), entry(2, 1)] },
  ]) {
    const node = await RaftNode.create(raftOptions({ peers: undefined }, new FixedLoadStorage(() => state)));
    await node.close();
  }
});
