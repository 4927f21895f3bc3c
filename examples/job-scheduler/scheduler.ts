/**
 * A job scheduler that runs each job on one instance only: the instances
 * elect a leader through the `KV` interface (a lease and a txn), and only
 * the leader runs jobs. Every write a job makes is fenced by the leader
 * key's createRevision, so a deposed leader that still believes it leads
 * (cut off from the cluster, or paused) cannot write after its successor.
 *
 * The election, written against `KV` directly:
 * - grant a lease (TTL `ttlSeconds`) and keep it alive every third of the TTL;
 * - campaign: `txn(if createRevision(leaderKey) == 0 then put(leaderKey, id, lease))`;
 *   the winner's fencing token is the key's createRevision (the txn's revision);
 * - the key disappears when the leader's lease expires or is revoked; the
 *   others see it gone and campaign again;
 * - a leader steps down on its own once a TTL has passed since it sent its
 *   last successful keep-alive (the server cannot have kept the lease
 *   longer than that... unless this process was paused: fencing covers it).
 */
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import type { Clock, TimerHandle } from '../../src/node/index.js';
import type { KV } from '../../src/server/index.js';
import { text } from '../../src/server/index.js';

/** A job: `steps` fenced writes to `jobs/<name>`, `stepMs` apart, started every `everyMs`. */
export interface Job {
  name: string;
  everyMs: number;
  steps: number;
  stepMs: number;
}

/** One run of a job, as the instance that ran it saw it. */
export interface JobRun {
  job: string;
  runId: string;
  /** The fencing token the run was started with. */
  token: number;
  startedAt: number;
  endedAt: number | undefined;
  /** Steps whose write was acknowledged. */
  stepsDone: number;
  /** `fenced`: a write was refused because another leader took over. */
  outcome: 'running' | 'completed' | 'fenced' | 'abandoned' | 'failed';
}

/** Options of {@link JobScheduler}. */
export interface JobSchedulerOptions {
  /** This instance's id (the value of the leader key while it leads). */
  id: string;
  /** The cluster, through its KV interface. */
  kv: KV;
  /** Time source for the schedule (ms). */
  clock: Clock;
  jobs: Job[];
  /** Key prefix. Default `scheduler/`. */
  prefix?: string;
  /** Lease TTL in seconds. Default 1. */
  ttlSeconds?: number;
  /** How often the instance looks at its state, ms. Default 50. */
  tickMs?: number;
  /** Called with a line for each notable event. */
  log?: (line: string) => void;
}

/** The value of a job write: `<runId> <step>/<steps> token <token>`. */
export function parseJobWrite(value: string): { runId: string; step: number; steps: number; token: number } | undefined {
  const m = /^(\S+) (\d+)\/(\d+) token (\d+)$/.exec(value);
  return m === null ? undefined : { runId: m[1]!, step: Number(m[2]), steps: Number(m[3]), token: Number(m[4]) };
}

/** One scheduler instance; start it with {@link start}. */
export class JobScheduler {
  /** Every run this instance started. */
  readonly runs: JobRun[] = [];
  readonly leaderKey: string;
  private readonly o: Required<Omit<JobSchedulerOptions, 'log'>> & { log: (line: string) => void };
  private lease: { id: number; deadline: number } | undefined;
  private leader: { token: number; nextKeepAlive: number } | undefined;
  private timer: TimerHandle | undefined;
  private busy = false;
  private stopped = false;
  private runSeq = 0;
  private readonly nextRun = new Map<string, number>();
  private readonly running = new Set<string>();

  constructor(options: JobSchedulerOptions) {
    this.o = { prefix: 'scheduler/', ttlSeconds: 1, tickMs: 50, log: () => {}, ...options };
    this.leaderKey = `${this.o.prefix}leader`;
  }

  /** The fencing token while this instance believes it leads. */
  get token(): number | undefined {
    return this.leader?.token;
  }

  /** Starts the election and the schedule. */
  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /**
   * Stops (running jobs stop at their next step) and revokes the lease, best
   * effort; a lease whose grant is in flight is revoked once granted, and
   * this instance campaigns no more.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.leader = undefined;
    const lease = this.lease;
    this.lease = undefined;
    if (lease !== undefined) await this.o.kv.leaseRevoke(lease.id).catch(() => undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimeout(() => {
      void this.tick();
    }, this.o.tickMs);
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      await this.step();
    } catch (err) {
      this.o.log(`${this.o.id}: ${isQuorumError(err) ? err.code : String(err)}`);
    } finally {
      this.busy = false;
      this.schedule();
    }
  }

  private stepDown(why: string): void {
    if (this.leader === undefined) return;
    this.o.log(`${this.o.id}: steps down (token ${this.leader.token}): ${why}`);
    this.leader = undefined;
  }

  private async step(): Promise<void> {
    const now = this.o.clock.now();
    const ttlMs = this.o.ttlSeconds * 1000;
    if (this.lease !== undefined && now >= this.lease.deadline) {
      this.lease = undefined;
      this.stepDown('no keep-alive succeeded within the TTL');
    }
    if (this.lease === undefined) {
      const sentAt = now;
      const g = await this.o.kv.leaseGrant(this.o.ttlSeconds);
      if (this.stopped) {
        // stop() came while the grant was in flight: it could not revoke
        // this lease, and a campaign with it would hold the leader key for
        // a whole TTL with nobody leading
        await this.o.kv.leaseRevoke(g.id).catch(() => undefined);
        return;
      }
      this.lease = { id: g.id, deadline: sentAt + g.ttl * 1000 };
    }
    const lease = this.lease;
    if (this.leader !== undefined) {
      if (this.o.clock.now() >= this.leader.nextKeepAlive) {
        const sentAt = this.o.clock.now();
        try {
          const k = await this.o.kv.leaseKeepAlive(lease.id);
          if (this.lease === lease) lease.deadline = sentAt + k.ttl * 1000;
          if (this.leader !== undefined) this.leader.nextKeepAlive = sentAt + ttlMs / 3;
        } catch (err) {
          if (isQuorumError(err, ErrorCode.LEASE_NOT_FOUND)) {
            this.lease = undefined;
            this.stepDown('the lease expired');
          }
          return;
        }
      }
      this.startDueJobs();
      return;
    }
    // not the leader: keep the lease alive, and campaign while nobody leads
    if (this.o.clock.now() >= lease.deadline - (2 * ttlMs) / 3) {
      const sentAt = this.o.clock.now();
      try {
        const k = await this.o.kv.leaseKeepAlive(lease.id);
        lease.deadline = sentAt + k.ttl * 1000;
      } catch (err) {
        if (isQuorumError(err, ErrorCode.LEASE_NOT_FOUND)) this.lease = undefined;
        return;
      }
    }
    if (this.stopped) return;
    const res = await this.o.kv.txn({
      compare: [{ key: this.leaderKey, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
      success: [{ put: { key: this.leaderKey, value: this.o.id, lease: lease.id } }],
      failure: [{ range: { key: this.leaderKey } }],
    });
    let token: number | undefined;
    if (res.succeeded) token = res.header.revision;
    else {
      const r = res.responses[0];
      const kv = r !== undefined && 'responseRange' in r ? r.responseRange.kvs[0] : undefined;
      // an earlier campaign whose answer was lost may have won
      if (kv !== undefined && text(kv.value) === this.o.id && kv.lease === lease.id) token = kv.createRevision;
    }
    if (token !== undefined && this.lease === lease && !this.stopped) {
      this.leader = { token, nextKeepAlive: this.o.clock.now() + ttlMs / 3 };
      this.o.log(`${this.o.id}: leads with token ${token}`);
    }
  }

  private startDueJobs(): void {
    const leader = this.leader;
    if (leader === undefined) return;
    const now = this.o.clock.now();
    for (const job of this.o.jobs) {
      if (this.running.has(job.name) || now < (this.nextRun.get(job.name) ?? 0)) continue;
      this.nextRun.set(job.name, now + job.everyMs);
      this.running.add(job.name);
      void this.runJob(job, leader.token).finally(() => this.running.delete(job.name));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.o.clock.setTimeout(resolve, ms));
  }

  private async runJob(job: Job, token: number): Promise<void> {
    const run: JobRun = {
      job: job.name,
      runId: `${this.o.id}.${++this.runSeq}`,
      token,
      startedAt: this.o.clock.now(),
      endedAt: undefined,
      stepsDone: 0,
      outcome: 'running',
    };
    this.runs.push(run);
    const end = (outcome: JobRun['outcome']): void => {
      run.outcome = outcome;
      run.endedAt = this.o.clock.now();
    };
    for (let step = 1; step <= job.steps; step++) {
      if (this.stopped || this.leader?.token !== token) return end('abandoned');
      try {
        // the fence: this write happens only while our leader key is the current one
        const res = await this.o.kv.txn({
          compare: [{ key: this.leaderKey, target: 'CREATE', result: 'EQUAL', createRevision: token }],
          success: [{ put: { key: `${this.o.prefix}jobs/${job.name}`, value: `${run.runId} ${step}/${job.steps} token ${token}` } }],
        });
        if (!res.succeeded) {
          this.stepDown(`job ${job.name} was fenced off`);
          return end('fenced');
        }
      } catch {
        return end('failed');
      }
      run.stepsDone = step;
      if (step < job.steps) await this.sleep(job.stepMs);
    }
    end('completed');
  }
}
