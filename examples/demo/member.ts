// One member of the demo cluster: a KvNode over TCP on 127.0.0.1 with
// classic-level in its own directory, driven by the parent over IPC.
//
//   node --import tsx examples/demo/member.ts <id> <members-json> <data-dir>
import { KvNode, text } from '../../src/index.js';
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
  requestTimeoutMs: 3_000,
  leaseCheckMs: 100,
});

let writing = false;
let seq = 0;

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

function watch(prefix: string): void {
  const w = node.watch(prefix, { prefix: true });
  w.on('put', (ev) => report({ kind: 'watchEvent', id, line: `PUT ${text(ev.kv.key)} rev=${ev.kv.modRevision}` }));
  w.on('delete', (ev) => report({ kind: 'watchEvent', id, line: `DELETE ${text(ev.kv.key)} rev=${ev.kv.modRevision}` }));
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
        } else if (!m.on) {
          writing = false;
        }
        break;
      case 'dump':
        await dump(m.prefix, m.atLeast);
        break;
      case 'watch':
        watch(m.prefix);
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
