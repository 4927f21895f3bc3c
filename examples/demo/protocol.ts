// Messages between the demo's parent process and its members (over the
// child_process IPC channel).

/** Parent -> member. */
export type Command =
  | { op: 'status' }
  | { op: 'write'; on: boolean }
  | { op: 'lock'; rounds: number; holdMs: number }
  | { op: 'campaign'; holdMs: number }
  | { op: 'dump'; prefix: string; atLeast: number }
  | { op: 'watch'; prefix: string; startRevision: number };

/** Member -> parent. */
export type Report =
  | { kind: 'ready'; id: string }
  | { kind: 'status'; id: string; leader: string; term: number; revision: number; applied: number }
  | { kind: 'ack'; id: string; key: string; revision: number; at: number }
  | { kind: 'writeError'; id: string; code: string; at: number }
  | { kind: 'locked'; id: string; token: number; at: number }
  | { kind: 'unlocked'; id: string; token: number; at: number }
  | { kind: 'lockDone'; id: string }
  | { kind: 'elected'; id: string; term: number; at: number }
  | { kind: 'resigning'; id: string; term: number; at: number }
  | { kind: 'electionDone'; id: string }
  | { kind: 'watchEvent'; id: string; type: 'PUT' | 'DELETE'; key: string; revision: number }
  | { kind: 'dump'; id: string; revision: number; hash: number; kvs: [string, number, number, number][] }
  | { kind: 'error'; id: string; message: string };
