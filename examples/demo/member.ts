// One member of the demo cluster: a KvNode over TCP on 127.0.0.1 with
// classic-level in its own directory, driven by the parent over IPC.
//
//   node --import tsx examples/demo/member.ts <id> <members-json> <data-dir>
import { Election, KvNode, Mutex, Session, text } from '../../src/index.js';
import { join } from 'node:path';
import { KvEventFile, KvEventSink, RecordingKV } from '../../src/testing/index.js';
import type { Command, Report } from './protocol.js';

const [id, membersJson, dataDir] = process.argv.slice(2) as [string, string, string];
const members = JSON.parse(membersJson) as Record<string, string>;

function report(r: Report): void {
  process.send?.(r);
}

const node = await KvNode.open({
  id,
  members,
  dataDir,
  clusterId: 'quorumkv-demo',
  // 50 ms ticks, elections after 500-1000 ms of silence
  tickMs: 50,
  electionTicks: 10,
  // clients give up on a request after 1 s and retry, as an etcd client with a deadline would
  requestTimeoutMs: 1_000,
  leaseCheckMs: 100,
});

let writing = false;
let seq = 0;

// The register clients: gets, puts and compare-and-swaps on a few shared
// keys, recorded (with the machine's monotonic clock) in a file of this
// process's own, written synchronously so that a SIGKILL loses nothing
// recorded; the parent reads the files of every member and checks the
// merged history for linearizability.
const REGISTERS = 3;
const history = new KvEventSink(new KvEventFile(join(dataDir, `history-${process.pid}.jsonl`)).send);
const registers = new RecordingKV(node, { sink: history, clientId: `${id}/${process.pid}` });

async function registerLoop(): Promise<void> {
  let n = 0;
  while (writing) {
    const key = `demo/reg/${Math.floor(Math.random() * REGISTERS)}`;
    const roll = Math.random();
    try {
      if (roll < 0.4) {
        await registers.put(key, `${id}/${process.pid}/${++n}`);
      } else if (roll < 0.8) {
        await registers.get(key);
      } else {
        const cur = await registers.get(key);
        await registers.txn({
          compare: [{ key, target: 'MOD', result: 'EQUAL', modRevision: cur?.modRevision ?? 0 }],
          success: [{ put: { key, value: `${id}/${process.pid}/${++n}` } }],
          failure: [{ range: { key } }],
        });
      }
    } catch {
      // recorded as failed or unknown; retry after a pause, as the writer does
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function writeLoop(): Promise<void> {
  while (writing) {
    const key = `demo/w/${id}/${process.pid}/${String(++seq).padStart(6, '0')}`;
    try {
      const res = await node.put(key, `value ${seq} from ${id}`);
      report({ kind: 'ack', id, key, revision: res.header.revision, at: Date.now() });
    } catch (err) {
      report({ kind: 'writeError', id, code: (err as { code?: string }).code ?? 'ERROR', at: Date.now() });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function dump(prefix: string, atLeast: number): Promise<void> {
  // wait until this member has applied at least `atLeast`
  const deadline = Date.now() + 10_000;
  while (node.store.currentRevision() < atLeast && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  // the registers' final values, read through the recorder (a linearizable
  // read each): what every acknowledged register write left behind
  for (let r = 0; r < REGISTERS; r++) {
    for (let attempt = 1; ; attempt++) {
      try {
        await registers.get(`demo/reg/${r}`);
        break;
      } catch (err) {
        if (attempt === 5) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  const res = await node.range({ key: prefix, prefix: true, serializable: true });
  const { hash, revision } = await node.store.hash();
  report({
    kind: 'dump',
    id,
    revision,
    hash,
    kvs: res.kvs.map((kv) => [text(kv.key), kv.createRevision, kv.modRevision, kv.version]),
  });
}

/** Takes the demo mutex `rounds` times, writing the fencing token to a register guarded by the lock. */
async function lockRounds(rounds: number, holdMs: number): Promise<void> {
  const session = await Session.create(node, { ttl: 5 });
  try {
    const mutex = new Mutex(session, 'demo/lock');
    for (let i = 0; i < rounds; i++) {
      await mutex.withLock(async (lock) => {
        const at = Date.now();
        // the protected write: only while this holder's key is still the lock's
        const res = await node.txn({
          compare: [lock.isOwner()],
          success: [{ put: { key: 'demo/register', value: String(lock.fencingToken) } }],
        });
        if (!res.succeeded) throw new Error('lost the lock before writing');
        report({ kind: 'locked', id, token: lock.fencingToken, at });
        await new Promise((r) => setTimeout(r, holdMs));
        report({ kind: 'unlocked', id, token: lock.fencingToken, at: Date.now() });
      });
    }
  } finally {
    await session.close();
  }
  report({ kind: 'lockDone', id });
}

/** Campaigns once: waits to be elected, leads for `holdMs`, resigns. */
async function campaign(holdMs: number): Promise<void> {
  const session = await Session.create(node, { ttl: 5 });
  try {
    const election = new Election(session, 'demo/election');
    const leadership = await election.campaign(`member ${id}`);
    const at = Date.now();
    // the leader's work: only while this leadership is the election's
    const res = await node.txn({
      compare: [leadership.isLeader()],
      success: [{ put: { key: 'demo/election-work', value: `${id} term ${leadership.term}` } }],
    });
    if (!res.succeeded) throw new Error('lost the leadership before working');
    report({ kind: 'elected', id, term: leadership.term, at });
    await new Promise((r) => setTimeout(r, holdMs));
    // no longer acting as the leader from here on
    report({ kind: 'resigning', id, term: leadership.term, at: Date.now() });
    await election.resign();
  } finally {
    await session.close();
  }
  report({ kind: 'electionDone', id });
}

function watch(prefix: string, startRevision: number): void {
  const w = node.watch(prefix, { prefix: true, startRevision });
  for (const type of ['put', 'delete'] as const) {
    w.on(type, (ev) => report({ kind: 'watchEvent', id, type: ev.type, key: text(ev.kv.key), revision: ev.kv.modRevision }));
  }
}

process.on('message', (m: Command) => {
  const run = async (): Promise<void> => {
    switch (m.op) {
      case 'status': {
        const s = node.status();
        report({ kind: 'status', id, leader: s.leader, term: s.raftTerm, revision: s.revision, applied: s.raftAppliedIndex });
        break;
      }
      case 'write':
        if (m.on && !writing) {
          writing = true;
          void writeLoop();
          void registerLoop();
        } else if (!m.on) {
          writing = false;
        }
        break;
      case 'dump':
        await dump(m.prefix, m.atLeast);
        break;
      case 'watch':
        watch(m.prefix, m.startRevision);
        break;
      case 'lock':
        await lockRounds(m.rounds, m.holdMs);
        break;
      case 'campaign':
        await campaign(m.holdMs);
        break;
      default:
        break;
    }
  };
  run().catch((err: Error) => report({ kind: 'error', id, message: err.message }));
});

process.on('disconnect', () => {
  void node.close().finally(() => process.exit(0));
});

report({ kind: 'ready', id });
