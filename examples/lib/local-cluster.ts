// Starts a cluster of KvNodes in this process for the examples: real TCP on
// 127.0.0.1 (free ports) and classic-level in a temporary directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvNode } from '../../src/index.js';
import { freePort } from './free-port.js';

export { freePort };


export interface LocalCluster {
  nodes: KvNode[];
  /** Resolves once a leader is elected and every member knows it; returns it. */
  leader(): Promise<KvNode>;
  close(): Promise<void>;
}

export async function startLocalCluster(ids = ['a', 'b', 'c']): Promise<LocalCluster> {
  const root = mkdtempSync(join(tmpdir(), 'quorumkv-example-'));
  const members: Record<string, string> = {};
  for (const id of ids) members[id] = `127.0.0.1:${await freePort()}`;
  const nodes = await Promise.all(
    ids.map((id) => KvNode.open({ id, members, dataDir: join(root, id), tickMs: 50, electionTicks: 10 })),
  );
  return {
    nodes,
    async leader() {
      for (;;) {
        const l = nodes.find((n) => n.raft.isLeader);
        // the examples use every member at once: a follower that has not
        // heard from the leader yet would refuse a write (no leader)
        if (l !== undefined && nodes.every((n) => n.raft.leader === l.id)) return l;
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await Promise.all(nodes.map((n) => n.close()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
