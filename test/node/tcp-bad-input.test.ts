// Bad input on the port of a live RaftNode: three members in this process on
// TcpTransport (127.0.0.1; plain TCP, and a second cluster on mutual TLS with
// the certificates of test/fixtures/tls), memory-level storage and a durable
// LogStateMachine. Raw sockets send garbage, an oversized length prefix, a
// handshake with a wrong cluster id, a valid handshake followed by a message
// whose `from` is another member, plaintext to a TLS port and a certificate
// from another CA. Every hostile connection also carries (where it can) a
// MsgApp with a higher term and a new entry, which would move the term and
// the log of any member it reached. Each connection is closed by the member;
// no member's term, commit or log length changes; afterwards a proposal
// commits and is applied on every member.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { RaftNode } from '../../src/node/index.js';
import { message, type Message } from '../../src/raftpb/index.js';
import { LevelLogStorage } from '../../src/storage/index.js';
import { FrameKind, TcpTransport } from '../../src/transport/index.js';
import { tlsFor } from '../transport/clusters.js';
import { RawPeer, messageFrame } from '../transport/raw-peer.js';
import { LogStateMachine, cmd } from './helpers.js';
import { freePort } from '../../examples/lib/free-port.js';

const CLUSTER = 'bad-input';
const IDS = ['a', 'b', 'c'];


function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Member {
  id: string;
  port: number;
  node: RaftNode<number>;
  sm: LogStateMachine;
  db: MemoryLevel<Uint8Array, Uint8Array>;
}

/** What must not move while nothing is proposed. */
interface Snapshot {
  term: number;
  commit: number;
  lastIndex: number;
  applied: number;
  leader: string;
}

class Cluster {
  private proposals = 0;

  private constructor(readonly members: Member[]) {}

  static async start(tls: boolean): Promise<Cluster> {
    const ports: Record<string, number> = {};
    for (const id of IDS) ports[id] = await freePort();
    const members = await Promise.all(
      IDS.map(async (id): Promise<Member> => {
        const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
        await db.open();
        const storage = await LevelLogStorage.open({ db: db.sublevel<Uint8Array, Uint8Array>('raft', { keyEncoding: 'view', valueEncoding: 'view' }) as never });
        const sm = await LogStateMachine.open(db.sublevel<Uint8Array, Uint8Array>('sm', { keyEncoding: 'view', valueEncoding: 'view' }));
        const transport = new TcpTransport({
          id,
          clusterId: CLUSTER,
          listen: { host: '127.0.0.1', port: ports[id]! },
          peers: Object.fromEntries(IDS.filter((p) => p !== id).map((p) => [p, `127.0.0.1:${ports[p]}`])),
          dialTimeoutMs: 2000,
          backoff: { initialMs: 20, maxMs: 200 },
          ...(tls ? { tls: tlsFor(id) } : {}),
        });
        const node = await RaftNode.create<number>({ id, peers: IDS, storage, transport, stateMachine: sm, tickMs: 100, electionTicks: 10, proposalTimeoutMs: 5000 });
        return { id, port: ports[id]!, node, sm, db };
      }),
    );
    return new Cluster(members);
  }

  leader(): Member {
    const l = this.members.find((m) => m.node.isLeader);
    assert.ok(l !== undefined, 'the cluster has a leader');
    return l;
  }

  follower(): Member {
    const f = this.members.find((m) => !m.node.isLeader);
    assert.ok(f !== undefined, 'the cluster has a follower');
    return f;
  }

  member(id: string): Member {
    const m = this.members.find((x) => x.id === id);
    assert.ok(m !== undefined, `member ${id} exists`);
    return m;
  }

  /** Proposes through `via` (a follower forwards) and waits until every member applied the whole log. */
  async proposeAndConverge(via: Member): Promise<void> {
    const key = `probe-${++this.proposals}`;
    const index = await via.node.propose(cmd(key, 'x'));
    const deadline = Date.now() + 5000;
    for (;;) {
      const st = this.members.map((m) => m.node.status());
      const last = st[0]!.lastIndex;
      if (st.every((s) => s.lastIndex === last && s.commit === last && s.applied === last && s.leader !== '' && s.leader === st[0]!.leader)) break;
      assert.ok(Date.now() < deadline, `every member applies the whole log within 5 s: ${JSON.stringify(st.map((s) => [s.id, s.term, s.commit, s.lastIndex, s.applied]))}`);
      await sleep(20);
    }
    for (const m of this.members) {
      assert.equal(m.sm.kv.get(key), 'x', `${m.id} applied ${key}`);
      assert.ok(m.sm.applyLog.includes(`${index} ${key}=x`), `${m.id} applied ${key} at ${index}`);
    }
  }

  snapshot(): Map<string, Snapshot> {
    return new Map(
      this.members.map((m) => {
        const s = m.node.status();
        return [m.id, { term: s.term, commit: s.commit, lastIndex: s.lastIndex, applied: s.applied, leader: s.leader }];
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.node.close()));
    await Promise.all(this.members.map((m) => m.db.close()));
  }
}

/**
 * A MsgApp from `from` to `to` in a much higher term, carrying a new entry and
 * committing it: a member that received it would take the term and grow its log.
 */
function hostileAppend(from: string, to: string, target: Member): Message {
  const s = target.node.status();
  const term = s.term + 10;
  return message({
    type: 'MsgApp',
    from,
    to,
    term,
    logTerm: s.term,
    index: s.lastIndex,
    commit: s.lastIndex + 1,
    entries: [{ term, index: s.lastIndex + 1, type: 'Normal', data: new Uint8Array(0) }],
  });
}

/**
 * Runs one attack against an idle, healthy cluster: records every member's
 * status, runs `attack` (which must see its connection closed), waits past a
 * few heartbeats, checks that no member's term, commit, log length, applied
 * index or leader moved, then checks that a proposal still commits everywhere.
 */
async function withoutEffect(cluster: Cluster, attack: () => Promise<void>): Promise<void> {
  await cluster.proposeAndConverge(cluster.follower());
  const before = cluster.snapshot();
  await attack();
  await sleep(500); // five heartbeat intervals: anything delivered would have moved a term or a log by now
  assert.deepEqual(cluster.snapshot(), before, 'no member changed term, commit, log length, applied index or leader');
  await cluster.proposeAndConverge(cluster.follower());
  await cluster.proposeAndConverge(cluster.leader());
}

/** Frames written on a connection whose handshake was refused: a well-formed hostile append from `from`. */
function hostileFrames(from: string, target: Member): Buffer {
  return messageFrame(hostileAppend(from, target.id, target));
}

describe('a RaftNode cluster on plain TCP', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await Cluster.start(false);
  });
  after(async () => {
    await cluster?.close();
  });

  test('garbage bytes are answered with nothing and the connection is closed; no member moves and the cluster keeps committing', async () => {
    await withoutEffect(cluster, async () => {
      for (const target of cluster.members) {
        const raw = await RawPeer.connect(target.port);
        // A header-shaped start (a 200-byte frame with a wrong CRC), then noise.
        const garbage = Buffer.alloc(208);
        garbage.writeUInt32BE(200, 0);
        garbage.writeUInt32BE(0xdeadbeef, 4);
        for (let i = 8; i < garbage.length; i++) garbage[i] = (i * 131 + 7) & 0xff;
        raw.write(garbage);
        await raw.waitClosed(5000);
        assert.equal(raw.bytesReceived, 0, `${target.id} sent nothing back to garbage`);
      }
    });
  });

  test('a length prefix far above the frame limit closes the connection before any body arrives; no member moves', async () => {
    await withoutEffect(cluster, async () => {
      for (const target of cluster.members) {
        const raw = await RawPeer.connect(target.port);
        const header = Buffer.alloc(8);
        header.writeUInt32BE(0xfffffff0, 0); // ~4 GiB, against the default limit of 4 MiB
        header.writeUInt32BE(0, 4);
        raw.write(Buffer.concat([header, Buffer.alloc(64, 0x42)]));
        await raw.waitClosed(5000);
        assert.equal(raw.bytesReceived, 0, `${target.id} sent nothing back to an oversized frame`);
      }
    });
  });

  test('a handshake with another cluster id is refused and the append behind it never reaches Raft', async () => {
    await withoutEffect(cluster, async () => {
      for (const target of cluster.members) {
        const other = IDS.find((id) => id !== target.id)!;
        const raw = await RawPeer.connect(target.port);
        raw.hello({ clusterId: 'another-cluster', from: other, to: target.id });
        raw.write(hostileFrames(other, target));
        await raw.waitClosed(5000);
        assert.equal(raw.bytesReceived, 0, `${target.id} did not answer a foreign cluster's handshake`);
      }
    });
  });

  test('a member-claiming handshake followed by a message from another member closes the connection; the message is dropped', async () => {
    await withoutEffect(cluster, async () => {
      // Against a follower and against the leader.
      for (const target of [cluster.follower(), cluster.leader()]) {
        const [claimed, forged] = IDS.filter((id) => id !== target.id) as [string, string];
        const raw = await RawPeer.connect(target.port);
        raw.hello({ clusterId: CLUSTER, from: claimed, to: target.id });
        raw.write(messageFrame(hostileAppend(forged, target.id, target)));
        await raw.waitClosed(5000);
        assert.equal(raw.frames[0]?.kind, FrameKind.Hello, `${target.id} accepted the handshake claiming ${claimed} (the check that failed is the message's from)`);
        assert.equal(raw.frames.length, 1, `${target.id} sent nothing but its handshake`);
      }
    });
  });
});

describe('a RaftNode cluster on mutual TLS', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await Cluster.start(true);
  });
  after(async () => {
    await cluster?.close();
  });

  test('plaintext on a TLS member port (a valid handshake and append) is refused; no member moves and the cluster keeps committing', async () => {
    await withoutEffect(cluster, async () => {
      for (const target of cluster.members) {
        const other = IDS.find((id) => id !== target.id)!;
        const raw = await RawPeer.connect(target.port);
        raw.hello({ clusterId: CLUSTER, from: other, to: target.id });
        raw.write(hostileFrames(other, target));
        await raw.waitClosed(5000);
        assert.ok(!raw.frames.some((f) => f.kind === FrameKind.Hello), `${target.id} sent no handshake over plaintext`);
      }
    });
  });

  test('a TLS client with a certificate from another CA is refused before its handshake reaches Raft', async () => {
    await withoutEffect(cluster, async () => {
      const target = cluster.leader();
      const other = IDS.find((id) => id !== target.id)!;
      const raw = await RawPeer.connect(target.port, { ...tlsFor('rogue-node', 'rogue-ca'), ca: tlsFor('a').ca });
      if (raw.isOpen) {
        raw.hello({ clusterId: CLUSTER, from: other, to: target.id });
        raw.write(hostileFrames(other, target));
      }
      await raw.waitClosed(5000);
      assert.ok(!raw.frames.some((f) => f.kind === FrameKind.Hello), `${target.id} sent no handshake to an unauthenticated client`);
    });
  });

  test('a member-claiming handshake over valid mutual TLS followed by a message from another member closes the connection', async () => {
    await withoutEffect(cluster, async () => {
      const target = cluster.follower();
      const [claimed, forged] = IDS.filter((id) => id !== target.id) as [string, string];
      const raw = await RawPeer.connect(target.port, tlsFor(claimed));
      raw.hello({ clusterId: CLUSTER, from: claimed, to: target.id });
      raw.write(messageFrame(hostileAppend(forged, target.id, target)));
      await raw.waitClosed(5000);
      assert.equal(raw.frames[0]?.kind, FrameKind.Hello, `${target.id} accepted the TLS handshake claiming ${claimed}`);
    });
  });
});
