// The in-process cluster of test/server/helpers.ts (MemoryNetwork, virtual
// clock, tick 10 ms, election timeout 100-200 ms) with extra KvNode options
// per member, and a cluster of members on classic-level on real time.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { KvNode } from '../../src/server/index.js';
import { KvNode as Node } from '../../src/server/index.js';
import { MemoryNetwork } from '../../src/transport/index.js';
import { KvCluster, type ExtraOptions } from '../server/helpers.js';

type Extra = ExtraOptions;

/** The in-process cluster, with extra KvNode options per member (`extra`). */
export class OpsCluster extends KvCluster {}

/** A fresh temporary directory, removed by `cleanup`. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `quorumkv-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Members on classic-level in directories, on real time (a virtual clock
 * would run ahead of the disk): MemoryNetwork without delays, tick 10 ms,
 * election timeout 100-200 ms.
 */
export class DiskCluster {
  readonly net = new MemoryNetwork({ seed: 1 });
  readonly nodes = new Map<string, KvNode>();

  constructor(
    readonly ids: string[],
    readonly dirOf: (id: string) => string,
    readonly extra: (id: string) => Extra = () => ({}),
  ) {}

  async start(id: string): Promise<KvNode> {
    const node = await Node.open({
      id,
      members: this.ids,
      transport: this.net.transport(id),
      dataDir: this.dirOf(id),
      tickMs: 10,
      electionTicks: 10,
      requestTimeoutMs: 5_000,
      ...this.extra(id),
    });
    this.nodes.set(id, node);
    return node;
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) await this.start(id);
  }

  async waitFor(cond: () => boolean, maxMs = 10_000, what = 'condition'): Promise<void> {
    const until = Date.now() + maxMs;
    while (!cond()) {
      if (Date.now() > until) throw new Error(`timed out after ${maxMs} ms waiting for ${what}`);
      await delay(5);
    }
  }

  async waitLeader(): Promise<KvNode> {
    await this.waitFor(() => [...this.nodes.values()].some((n) => n.raft.isLeader), 10_000, 'a leader');
    return [...this.nodes.values()].find((n) => n.raft.isLeader)!;
  }

  node(id: string): KvNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no running node ${id}`);
    return n;
  }

  async stop(id: string): Promise<void> {
    const n = this.nodes.get(id);
    this.nodes.delete(id);
    await n?.close();
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
  }
}
