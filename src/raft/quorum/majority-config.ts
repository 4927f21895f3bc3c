/**
 * Majority quorums (etcd-io/raft `quorum/majority.go`): the commit index a
 * majority of voters has acknowledged, and the outcome of a vote. Only voters
 * are ever passed in; learners never count in a quorum (Raft thesis §4.2.1).
 * @module
 */

/** Outcome of counting votes (or acknowledgements) against a majority. */
export type VoteResult =
  /** Neither a quorum of yes nor a quorum of no yet. */
  | 'pending'
  /** A quorum of no: the vote cannot be won. */
  | 'lost'
  /** A quorum of yes. */
  | 'won';

/**
 * The largest index acknowledged by a majority of `voters`: sort the acked
 * indexes and take the one a majority is at or beyond. A voter with no acked
 * index counts as 0. By convention an empty configuration commits nothing
 * (0), since single-server changes never leave the voter set empty.
 * @param voters - voter ids, in any order
 * @param ackedIndex - acknowledged index of a voter, or undefined when unknown
 * @param scratch - optional reusable array (avoids an allocation per call)
 */
export function committedIndex(
  voters: readonly string[],
  ackedIndex: (id: string) => number | undefined,
  scratch: number[] = [],
): number {
  const n = voters.length;
  if (n === 0) return 0;
  scratch.length = n;
  for (let i = 0; i < n; i++) scratch[i] = ackedIndex(voters[i]!) ?? 0;
  // insertion sort, ascending: n is small (3, 5, 7)
  for (let i = 1; i < n; i++) {
    const v = scratch[i]!;
    let j = i - 1;
    while (j >= 0 && scratch[j]! > v) {
      scratch[j + 1] = scratch[j]!;
      j--;
    }
    scratch[j + 1] = v;
  }
  // The smallest index that a quorum has acked: from the end of the sorted
  // array, move n/2+1 to the left.
  return scratch[n - (Math.floor(n / 2) + 1)]!;
}

/**
 * Counts `votes` (id -> granted) among `voters`. Votes from ids outside
 * `voters` (learners, removed nodes) are ignored. By convention an election
 * on an empty configuration is won.
 */
export function voteResult(voters: readonly string[], votes: ReadonlyMap<string, boolean>): VoteResult {
  const n = voters.length;
  if (n === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (let i = 0; i < n; i++) {
    const v = votes.get(voters[i]!);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(n / 2) + 1;
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}
