// Crash safety of RaftNode (Raft Figure 2, "persistent state ... updated on
// stable storage before responding to RPCs"; thesis §3.8): three members on a
// faulty MemoryNetwork and a virtual clock, each on a CrashableLevel shared by
// the Raft log and a durable LogStateMachine. Clients propose continuously to
// random members while members crash (every unsynced write is lost) and
// restart from what survived. Checked per seed:
// - no acknowledged proposal is lost: after healing, every proposal whose
//   promise resolved is on every member's applied log, once, at the index it
//   resolved with;
// - the applied logs are prefixes of each other whenever compared, and equal
//   at the end;
// - no member grants two candidates its vote in one term, across restarts
//   (every MsgVoteResp with reject: false is recorded at send);
// - at each restart, what the member's messages vouched for survived: a term
//   at least that of every message it sent, the vote it granted in that term,
//   and the log it acknowledged (MsgAppResp) or sent (MsgApp) in that term.
// Half of the crashes happen between two steps of virtual time, half right
// after the member sends a message (any, a granted vote, an append or its
// acknowledgement), where a write the node had not finished would be lost.
//
// Seeds: QUORUMKV_NODE_SEED=<n> replays one seed; QUORUMKV_NODE_SEEDS=<n> runs
// seeds 1..n (default 100); QUORUMKV_NODE_TRACE=1 prints proposals and crashes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inWorker } from '../in-worker.js';

const single = process.env.QUORUMKV_NODE_SEED;
const count = Number(process.env.QUORUMKV_NODE_SEEDS ?? 100);
const seeds = single !== undefined ? [Number(single)] : Array.from({ length: count }, (_, i) => i + 1);

test(`no acknowledged proposal is lost, applied logs agree and no member votes twice in a term across crashes (${seeds.length} seeds)`, async (t) => {
  const started = Date.now();
  // (in a worker thread, outside the test runner's tracking of every promise: test/in-worker.ts)
  const { acked, crashes, snapshots } = await inWorker<{ acked: number; crashes: number; snapshots: number }>(new URL('./crash-sim.ts', import.meta.url), 'runCrashSeeds', [seeds], t.signal);
  console.log(
    `crash test: ${seeds.length} seeds (${seeds[0]}..${seeds[seeds.length - 1]}), ${acked} acknowledged proposals, ${crashes} crashes, ${snapshots} snapshots, ${Date.now() - started} ms`,
  );
  assert.ok(acked > seeds.length * 10, 'the clients got proposals through');
  assert.ok(crashes >= seeds.length, 'members crashed');
});
