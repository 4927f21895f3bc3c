// RaftNode refuses a proposal whose entry no message of its transport could
// carry: on TCP, a MsgApp (or a follower's forwarded MsgProp) larger than
// maxFrameBytes is dropped, so such an entry would never reach a follower,
// and every entry after it would wait behind it for good. Two members on
// TcpTransport (127.0.0.1) with a small maxFrameBytes. Deterministic: no seed
// to replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { RaftNode } from '../../src/node/index.js';
import { LevelLogStorage } from '../../src/storage/index.js';
import { TcpTransport } from '../../src/transport/index.js';
import { freePort } from '../../examples/lib/free-port.js';
import { LogStateMachine, cmd } from './helpers.js';

const IDS = ['a', 'b'];
const FRAME = 8 * 1024;

test('a proposal too large for the transport\'s messages is refused at once with QUORUMKV_REQUEST_TOO_LARGE, and the log goes on', async () => {
  const ports: Record<string, number> = {};
  for (const id of IDS) ports[id] = await freePort();
  const members = await Promise.all(
    IDS.map(async (id) => {
      const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      const storage = await LevelLogStorage.open({ db: db.sublevel<Uint8Array, Uint8Array>('raft', { keyEncoding: 'view', valueEncoding: 'view' }) as never });
      const sm = await LogStateMachine.open(db.sublevel<Uint8Array, Uint8Array>('sm', { keyEncoding: 'view', valueEncoding: 'view' }));
      const transport = new TcpTransport({
        id,
        clusterId: 'proposal-size',
        listen: { host: '127.0.0.1', port: ports[id]! },
        peers: Object.fromEntries(IDS.filter((p) => p !== id).map((p) => [p, `127.0.0.1:${ports[p]}`])),
        maxFrameBytes: FRAME,
        backoff: { initialMs: 20, maxMs: 200 },
      });
      const node = await RaftNode.create<number>({ id, peers: IDS, storage, transport, stateMachine: sm, tickMs: 20, electionTicks: 10, proposalTimeoutMs: 3000 });
      return { id, node, sm, db };
    }),
  );
  try {
    while (!members.some((m) => m.node.isLeader)) await new Promise((r) => setTimeout(r, 10));
    const follower = members.find((m) => !m.node.isLeader)!;
    for (const via of members) {
      const before = via.node.status().lastIndex;
      await assert.rejects(via.node.propose(cmd('big', 'x'.repeat(FRAME))), (e: unknown) => isQuorumError(e, ErrorCode.REQUEST_TOO_LARGE), `refused on ${via.id}`);
      assert.equal(via.node.status().lastIndex, before, 'nothing proposed');
    }
    // what fits still commits, through the follower too
    const index = await follower.node.propose(cmd('fits', 'x'.repeat(FRAME - 2048)));
    assert.ok(index > 0);
    await follower.node.propose(cmd('small', 'x'));
  } finally {
    for (const m of members) {
      await m.node.close();
      await m.db.close();
    }
  }
});
