// An in-test network of Raft state machines (etcd-io/raft raft_test.go's
// `network`): `send` delivers messages and everything they cause until the
// network is quiet; `cut`, `isolate`, `drop` and `ignore` lose messages;
// `recover` heals everything. Drops with a probability use a seeded
// generator, so runs are reproducible.
import type { Message, MessageType } from '../../../src/raftpb/index.js';
import type { MemoryStorage } from '../../../src/raft/memory-storage.js';
import type { Raft } from '../../../src/raft/raft.js';
import { seededRandom } from '../../../src/raft/seeded-random.js';
import { newTestRaft, newTestStorage, readMessages, type TestRaftOptions } from './harness.js';

/** A peer that swallows everything (etcd's `blackHole`). */
export const BLACK_HOLE = 'blackhole' as const;

type Peer = Raft | typeof BLACK_HOLE;

/** A network of peers `'1'`, `'2'`, ... */
export class Network {
  readonly peers = new Map<string, Peer>();
  readonly storage = new Map<string, MemoryStorage>();
  private readonly dropm = new Map<string, number>();
  private readonly ignorem = new Set<MessageType>();
  private readonly rand = seededRandom('network');
  /** Called for each message before delivery; returning false drops it. */
  msgHook: ((m: Message) => boolean) | undefined = undefined;

  /**
   * `peers[i]` becomes node `String(i + 1)`: `null` for a fresh node with
   * every peer as voter, a Raft built by the test, or {@link BLACK_HOLE}.
   */
  constructor(peers: (Raft | null | typeof BLACK_HOLE)[], opts: TestRaftOptions = {}) {
    const ids = peers.map((_, i) => String(i + 1));
    peers.forEach((p, i) => {
      const id = ids[i]!;
      if (p === null) {
        const s = newTestStorage(ids);
        this.storage.set(id, s);
        this.peers.set(id, newTestRaft(id, 10, 1, s, opts));
      } else {
        if (p !== BLACK_HOLE && p.id !== id) throw new Error(`peer ${i} must have id ${id}, has ${p.id}`);
        this.peers.set(id, p);
        if (p !== BLACK_HOLE) this.storage.set(id, p.raftLog.storage as MemoryStorage);
      }
    });
  }

  /** The Raft of node `id`. */
  raft(id: string): Raft {
    const p = this.peers.get(id);
    if (p === undefined || p === BLACK_HOLE) throw new Error(`no raft ${id}`);
    return p;
  }

  /** Delivers the messages and every message they cause, until quiet. */
  send(...msgs: Message[]): void {
    const queue = msgs.slice();
    while (queue.length > 0) {
      const m = queue.shift()!;
      const p = this.peers.get(m.to);
      if (p === undefined || p === BLACK_HOLE) continue;
      p.step(m);
      queue.push(...this.filter(readMessages(p)));
    }
  }

  /** Drops messages from `from` to `to` with probability `perc` (1 = always). */
  drop(from: string, to: string, perc: number): void {
    this.dropm.set(`${from}->${to}`, perc);
  }

  /** Drops all messages between `a` and `b`. */
  cut(a: string, b: string): void {
    this.drop(a, b, 2);
    this.drop(b, a, 2);
  }

  /** Drops all messages to and from `id`. */
  isolate(id: string): void {
    for (const other of this.peers.keys()) {
      if (other !== id) this.cut(id, other);
    }
  }

  /** Drops all messages of type `t`. */
  ignore(t: MessageType): void {
    this.ignorem.add(t);
  }

  /** Heals every drop and ignore. */
  recover(): void {
    this.dropm.clear();
    this.ignorem.clear();
  }

  /** The messages that survive the drops and ignores. */
  filter(msgs: Message[]): Message[] {
    const out: Message[] = [];
    for (const m of msgs) {
      if (this.ignorem.has(m.type)) continue;
      if (m.type === 'MsgHup') throw new Error('unexpected MsgHup on the network');
      const perc = this.dropm.get(`${m.from}->${m.to}`) ?? 0;
      if (perc > 0 && this.rand() < perc) continue;
      if (this.msgHook !== undefined && !this.msgHook(m)) continue;
      out.push(m);
    }
    return out;
  }
}
