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
  /** Resolves once a leader is known; returns it. */
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
        if (l !== undefined) return l;
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await Promise.all(nodes.map((n) => n.close()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
