/**
 * The faults a simulation can inject, as data: scripted with
 * `Simulation.schedule` or drawn from the seed with {@link randomFaultSchedule}.
 * @module
 */
import { checkOptionsArg } from '../../option-keys.js';
import { ErrorCode, UsageError } from '../../errors.js';
import { describeJson, describeValue } from '../../arg-values.js';
import type { SimRandom } from './sim-random.js';

/** A member chosen when the fault fires: a given id, the current leader, or one drawn from the seed. */
export type MemberChoice = string | { leader: true } | { random: true };

/**
 * One fault. Network faults compose (two partitions block the union of
 * their links) until `heal` (partitions) or `calm` (everything).
 *
 * - `partition`: blocks every link between group `a` and group `b` (default:
 *   every other member), both ways;
 * - `split`: a majority/minority split; the leader lands on the side named
 *   by `leaderIn` (default: drawn from the seed);
 * - `bridge`: etcd's "bridge" partition: two sides that cannot talk, and one
 *   member (not the leader, when possible) that talks to both;
 * - `oneWay`: blocks messages `from -> to` only;
 * - `isolate`: cuts a member off from everyone;
 * - `heal`: removes every partition and isolation;
 * - `crash`: stops a member abruptly; every write it did not sync is lost;
 * - `restart`: starts a crashed member again from its durable data
 *   (`'all'`: every crashed member);
 * - `pause`: the member stops processing timers and messages for `ms`;
 * - `dropRate`, `duplicateRate`, `reorderRate`: per-message probabilities on
 *   every link (duplication never applies to forwarded proposals);
 * - `delay`: uniform per-message delay in `[minMs, maxMs]` virtual ms;
 * - `calm`: heals, restarts every crashed member, resumes every paused one
 *   and puts rates and delay back to the simulation's configured values;
 * - `moveLeader`: the leader hands its leadership to `to` (default: a voter
 *   drawn from the seed) with `KvNode.moveLeader` (etcd's `MoveLeader`,
 *   Raft thesis §3.10); skipped when there is no leader, and a transfer
 *   that fails (times out, the leader lost its leadership first) is only
 *   traced;
 * - `replace`: a membership change, as an operator replaces a machine:
 *   `member` is removed from the cluster (`removeMember`, through the leader
 *   or another member), its process is shut down for good a little later,
 *   then a new member of id `by` (default: a new id the simulation picks)
 *   is added as a learner (`addMember(by, undefined, { learner: true })`),
 *   started with an empty database and `join: true`, and promoted to voter
 *   once it caught up (`promoteMember`). Each step is retried every
 *   election timeout until it holds; replacements run one at a time, in
 *   the order they fire, and may outlast the fault window
 *   (`Simulation.membershipSettled`). An id is never used twice.
 */
export type Fault =
  | { type: 'partition'; a: string[]; b?: string[] }
  | { type: 'split'; leaderIn?: 'majority' | 'minority' }
  | { type: 'bridge' }
  | { type: 'oneWay'; from: MemberChoice; to: MemberChoice }
  | { type: 'isolate'; member: MemberChoice }
  | { type: 'heal' }
  | { type: 'crash'; member: MemberChoice }
  | { type: 'restart'; member: string | 'all' }
  | { type: 'pause'; member: MemberChoice; ms: number }
  | { type: 'dropRate'; rate: number }
  | { type: 'duplicateRate'; rate: number }
  | { type: 'reorderRate'; rate: number }
  | { type: 'delay'; minMs: number; maxMs: number }
  | { type: 'calm' }
  | { type: 'moveLeader'; to?: MemberChoice }
  | { type: 'replace'; member: MemberChoice; by?: string };

/** A fault and when it fires, in virtual ms since the simulation's start. */
export interface ScheduledFault {
  /** When the fault fires, in virtual ms since the simulation's start. */
  at: number;
  /** What happens then. */
  fault: Fault;
}

const FAULT_TYPES = ['partition', 'split', 'bridge', 'oneWay', 'isolate', 'heal', 'crash', 'restart', 'pause', 'dropRate', 'duplicateRate', 'reorderRate', 'delay', 'calm', 'moveLeader', 'replace'];

/**
 * Checks a fault before it is scheduled: a known type, members that exist
 * (a member choice: an id of `members`, `{ leader: true }` or
 * `{ random: true }`), rates in [0, 1], integer delays `0 <= minMs <= maxMs`,
 * a pause of a finite number of ms >= 0, a replacement's new id `by` that
 * is a non-empty string no member ever had. A bad fault found only when it
 * fires would stop the run as a failed simulation, far from its cause.
 * @param members - every id the simulation knows: its members, the members
 *   it removed, and the new ids of replacements already scheduled
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT`, naming what is wrong (an
 *   unknown member with the member ids)
 */
export function checkFault(fault: Fault, members: readonly string[]): void {
  const bad = (what: string): never => {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `fault ${describeJson(fault)}: ${what}`);
  };
  if (fault === null || typeof fault !== 'object') bad('not an object');
  if (!FAULT_TYPES.includes(fault.type)) bad(`unknown type (known: ${FAULT_TYPES.join(', ')})`);
  const member = (id: unknown): void => {
    if (typeof id !== 'string' || !members.includes(id)) bad(`unknown member ${describeJson(id)} (members: ${members.join(', ')})`);
  };
  const choice = (c: MemberChoice): void => {
    if (typeof c === 'string') member(c);
    else if (c === null || typeof c !== 'object' || !((c as { leader?: unknown }).leader === true || (c as { random?: unknown }).random === true)) {
      bad('a member is an id, { leader: true } or { random: true }');
    }
  };
  const rate = (p: number): void => {
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) bad('a rate is a probability in [0, 1]');
  };
  switch (fault.type) {
    case 'partition':
      if (!Array.isArray(fault.a) || (fault.b !== undefined && !Array.isArray(fault.b))) bad('a and b are lists of member ids');
      for (const id of [...fault.a, ...(fault.b ?? [])]) member(id);
      break;
    case 'split':
      if (fault.leaderIn !== undefined && fault.leaderIn !== 'majority' && fault.leaderIn !== 'minority') bad("leaderIn is 'majority' or 'minority'");
      break;
    case 'oneWay':
      choice(fault.from);
      choice(fault.to);
      break;
    case 'isolate':
    case 'crash':
      choice(fault.member);
      break;
    case 'restart':
      if (fault.member !== 'all') member(fault.member);
      break;
    case 'pause':
      choice(fault.member);
      if (typeof fault.ms !== 'number' || !Number.isFinite(fault.ms) || fault.ms < 0) bad('ms is a finite number of virtual ms >= 0');
      break;
    case 'dropRate':
    case 'duplicateRate':
    case 'reorderRate':
      rate(fault.rate);
      break;
    case 'moveLeader':
      if (fault.to !== undefined) choice(fault.to);
      break;
    case 'replace':
      choice(fault.member);
      if (fault.by !== undefined && (typeof fault.by !== 'string' || fault.by === '' || members.includes(fault.by))) {
        bad(`by is a new member id: a non-empty string no member ever had (ids used: ${members.join(', ')})`);
      }
      break;
    case 'delay':
      if (!(Number.isSafeInteger(fault.minMs) && Number.isSafeInteger(fault.maxMs) && fault.minMs >= 0 && fault.maxMs >= fault.minMs)) {
        bad('a delay is integers 0 <= minMs <= maxMs');
      }
      break;
    default:
      break;
  }
}

/** The kinds of fault {@link randomFaultSchedule} draws from. */
export type RandomFaultKind =
  | 'partition'
  | 'split'
  | 'bridge'
  | 'oneWay'
  | 'isolateLeader'
  | 'crash'
  | 'crashLeader'
  | 'pause'
  | 'drop'
  | 'delay'
  | 'duplicate'
  | 'reorder'
  | 'moveLeader'
  | 'replace';

/** Options of {@link randomFaultSchedule} (and `Simulation.randomFaults`). Times are virtual ms. */
export interface RandomFaultOptions {
  /** When the first fault may fire, ms since the start: a finite number. Default 0 (`Simulation.randomFaults`: now). */
  from?: number;
  /** When every fault is over: a `calm` fires at this time. A finite number >= `from`. Required. */
  until: number;
  /** Mean time between the starts of two faults: a finite number > 0. Default 300. */
  meanGapMs?: number;
  /** How long one fault lasts: uniform in this range of whole ms, `0 <= min <= max`. Default 100 to 800. */
  durationMs?: { min: number; max: number };
  /** Relative weights of the kinds (finite numbers >= 0); absent kinds get their default weight, 0 turns one off. */
  weights?: Partial<Record<RandomFaultKind, number>>;
}

/**
 * Default weights of {@link RandomFaultKind}. `moveLeader` and `replace`
 * (membership changes) are 0: give them a weight to draw them.
 */
export const DEFAULT_FAULT_WEIGHTS: Readonly<Record<RandomFaultKind, number>> = {
  partition: 3,
  split: 3,
  bridge: 2,
  oneWay: 1,
  isolateLeader: 3,
  crash: 3,
  crashLeader: 2,
  pause: 2,
  drop: 2,
  delay: 2,
  duplicate: 1,
  reorder: 1,
  moveLeader: 0,
  replace: 0,
};

/**
 * A member id that is not in `used`: the first free one of `a` to `z`,
 * else `m<n>`. The ids of replacements ({@link Fault} `replace`).
 */
export function newMemberId(used: Iterable<string>): string {
  const taken = new Set(used);
  for (let c = 97; c <= 122; c++) {
    const id = String.fromCharCode(c);
    if (!taken.has(id)) return id;
  }
  for (let n = 1; ; n++) if (!taken.has(`m${n}`)) return `m${n}`;
}

/** A readable one-line description of a fault. */
export function describeFault(f: Fault): string {
  const who = (m: MemberChoice): string => (typeof m === 'string' ? m : 'leader' in m ? 'the leader' : 'a random member');
  switch (f.type) {
    case 'partition':
      return `partition [${f.a.join(',')}] from [${f.b?.join(',') ?? 'the rest'}]`;
    case 'split':
      return `majority/minority split${f.leaderIn !== undefined ? ` (leader in the ${f.leaderIn})` : ''}`;
    case 'bridge':
      return 'bridge partition';
    case 'oneWay':
      return `one-way partition ${who(f.from)} -> ${who(f.to)}`;
    case 'isolate':
      return `isolate ${who(f.member)}`;
    case 'heal':
      return 'heal partitions';
    case 'crash':
      return `crash ${who(f.member)}`;
    case 'restart':
      return f.member === 'all' ? 'restart every crashed member' : `restart ${f.member}`;
    case 'pause':
      return `pause ${who(f.member)} for ${f.ms} ms`;
    case 'dropRate':
      return `drop rate ${f.rate}`;
    case 'duplicateRate':
      return `duplicate rate ${f.rate}`;
    case 'reorderRate':
      return `reorder rate ${f.rate}`;
    case 'delay':
      return `delay ${f.minMs}-${f.maxMs} ms`;
    case 'calm':
      return 'calm (heal, restart, resume, reset rates)';
    case 'moveLeader':
      return `move the leadership to ${f.to === undefined ? 'a voter' : who(f.to)}`;
    case 'replace':
      return `replace ${who(f.member)} by ${f.by ?? 'a new member'}`;
  }
}

/**
 * Draws a fault schedule: faults start at random times (exponential gaps
 * of mean `meanGapMs`) between `from` and `until`, each undone after a
 * random duration (a partition by `heal`, a crash by `restart`, a rate by
 * setting it back to `base`), and a `calm` fires at `until`. Faults may
 * overlap. A `replace` names its member and its new id: the faults drawn
 * after it name the members as they will be then. The result depends only
 * on `rng`'s seed, `members`, `usedIds` and the options.
 *
 * @param members - the current members
 * @param base - the rates and delay to go back to after a network fault
 * @param usedIds - every id that a replacement may not take (default
 *   `members`): removed members' and scheduled replacements' too
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when `until < from`, `from`, `until` or
 *   `meanGapMs` is not a finite number, `meanGapMs` is not above 0, `durationMs` is not whole
 *   ms `0 <= min <= max`, or a weight is not a finite number >= 0
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` for an option of a name the options do not declare,
 *   or a `durationMs` that is not a `{ min, max }` range (a number included)
 */
export function randomFaultSchedule(
  rng: SimRandom,
  members: readonly string[],
  options: RandomFaultOptions,
  base: { dropRate: number; duplicateRate: number; reorderRate: number; delay: { minMs: number; maxMs: number } },
  usedIds: readonly string[] = members,
): ScheduledFault[] {
  checkOptionsArg(options, ['from', 'until', 'meanGapMs', 'durationMs', 'weights'] satisfies (keyof RandomFaultOptions)[], 'random fault options');
  if (typeof options.durationMs === 'number') {
    // the other times of these options are plain numbers: say what this one is
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `random fault options.durationMs is a range of virtual ms, { min, max }, not a number (${options.durationMs})`);
  }
  checkOptionsArg(options.durationMs, ['min', 'max'], 'random fault options.durationMs ({ min, max })');
  // a weight of another name would be drawn like a fault kind, and schedule nothing
  checkOptionsArg(options.weights, Object.keys(DEFAULT_FAULT_WEIGHTS), 'random fault options.weights');
  const from = options.from ?? 0;
  const until = options.until;
  const gap = options.meanGapMs ?? 300;
  const dur = options.durationMs ?? { min: 100, max: 800 };
  // numbers checked before they are compared (an object's valueOf ran, a
  // string '300' was taken as a number); finite: a schedule up to an
  // infinite time would be drawn forever; whole durations: the draw of a
  // fractional range gave durations outside it
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (
    !finite(until) ||
    !finite(from) ||
    !(until >= from) ||
    !finite(gap) ||
    !(gap > 0) ||
    !Number.isSafeInteger(dur.min) ||
    !Number.isSafeInteger(dur.max) ||
    !(dur.min >= 0 && dur.max >= dur.min)
  ) {
    throw new UsageError(
      ErrorCode.INVALID_ARGUMENT,
      'random faults need finite times with from <= until, a finite meanGapMs > 0 and whole durations 0 <= durationMs.min <= durationMs.max',
    );
  }
  for (const [kind, w] of Object.entries(options.weights ?? {})) {
    // NaN, a negative number or a string turned the kind off, Infinity drew only the last kind
    if (w !== undefined && !(finite(w) && w >= 0)) {
      throw new UsageError(ErrorCode.INVALID_ARGUMENT, `random fault options.weights.${kind} must be a finite number >= 0, not ${describeValue(w)}`);
    }
  }
  const weights = { ...DEFAULT_FAULT_WEIGHTS, ...(options.weights ?? {}) };
  // the members as they will be when each fault fires (replacements change them)
  let current = [...members];
  const used = new Set([...usedIds, ...members]);
  const out: ScheduledFault[] = [];
  const add = (at: number, fault: Fault): void => {
    if (at < until) out.push({ at, fault });
  };
  let t = from;
  for (;;) {
    t += Math.max(1, Math.round(-Math.log(1 - rng.float()) * gap));
    if (t >= until) break;
    const kind = rng.weighted(weights);
    const end = t + rng.int(dur.min, dur.max);
    switch (kind) {
      case 'partition': {
        const shuffled = rng.shuffle(current);
        const n = rng.int(1, Math.max(1, Math.floor(current.length / 2)));
        add(t, { type: 'partition', a: shuffled.slice(0, n) });
        add(end, { type: 'heal' });
        break;
      }
      case 'split':
        add(t, { type: 'split', leaderIn: rng.chance(0.5) ? 'minority' : 'majority' });
        add(end, { type: 'heal' });
        break;
      case 'bridge':
        add(t, { type: 'bridge' });
        add(end, { type: 'heal' });
        break;
      case 'oneWay':
        add(t, { type: 'oneWay', from: { leader: true }, to: { random: true } });
        add(end, { type: 'heal' });
        break;
      case 'isolateLeader':
        add(t, { type: 'isolate', member: { leader: true } });
        add(end, { type: 'heal' });
        break;
      case 'crash': {
        const m = rng.pick(current);
        add(t, { type: 'crash', member: m });
        add(end, { type: 'restart', member: m });
        break;
      }
      case 'crashLeader':
        add(t, { type: 'crash', member: { leader: true } });
        add(end, { type: 'restart', member: 'all' });
        break;
      case 'pause':
        add(t, { type: 'pause', member: rng.chance(0.5) ? { leader: true } : { random: true }, ms: end - t });
        break;
      case 'drop':
        add(t, { type: 'dropRate', rate: [0.05, 0.1, 0.2, 0.5][rng.int(0, 3)]! });
        add(end, { type: 'dropRate', rate: base.dropRate });
        break;
      case 'delay': {
        const max = rng.int(5, 60);
        add(t, { type: 'delay', minMs: rng.int(0, Math.floor(max / 2)), maxMs: max });
        add(end, { type: 'delay', minMs: base.delay.minMs, maxMs: base.delay.maxMs });
        break;
      }
      case 'duplicate':
        add(t, { type: 'duplicateRate', rate: [0.05, 0.2][rng.int(0, 1)]! });
        add(end, { type: 'duplicateRate', rate: base.duplicateRate });
        break;
      case 'moveLeader':
        add(t, { type: 'moveLeader' });
        break;
      case 'replace': {
        const victim = rng.pick(current);
        const by = newMemberId(used);
        used.add(by);
        current = [...current.filter((id) => id !== victim), by];
        add(t, { type: 'replace', member: victim, by });
        break;
      }
      case 'reorder':
        add(t, { type: 'reorderRate', rate: [0.05, 0.2][rng.int(0, 1)]! });
        add(end, { type: 'reorderRate', rate: base.reorderRate });
        break;
    }
  }
  out.push({ at: until, fault: { type: 'calm' } });
  // stable by time: faults added for the same instant keep their order
  return out.map((f, i) => [f, i] as const).sort((x, y) => x[0].at - y[0].at || x[1] - y[1]).map((x) => x[0]);
}
