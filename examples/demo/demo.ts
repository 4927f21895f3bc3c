// `npm run demo`: a three-member quorumkv cluster as three processes on
// 127.0.0.1, each with classic-level in ./.demo-data/<id>. Clients write
// keys while a watcher prints events, take a mutex in turn and campaign for
// leadership; then the Raft leader is killed with SIGKILL, a new one takes
// over, the killed member restarts and catches up, and every acknowledged
// write is checked on all three members. Clients on every member also get,
// put and compare-and-swap a few shared registers through RecordingKV; the
// merged history is checked for linearizability (quorumkv/testing). Exits
// 0 when everything holds, non-zero naming what failed.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Member } from './member-process.js';
import type { Report } from './protocol.js';
import { freePort } from '../lib/free-port.js';
import { KvEventFile, KvHistoryMerger } from '../../src/testing/index.js';

const DATA = join(process.cwd(), '.demo-data');
const IDS = ['a', 'b', 'c'];
const started = Date.now();

function elapsed(): string {
  return `${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;
}

function say(msg: string): void {
  console.log(`[${elapsed()}] ${msg}`);
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function leaderOf(members: Member[], timeoutMs = 10_000): Promise<{ leader: string; term: number }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const m of members.filter((x) => x.alive)) {
      const s = await m.ask({ op: 'status' }, 'status').catch(() => undefined);
      if (s !== undefined && s.leader !== '' && members.find((x) => x.id === s.leader)?.alive) return { leader: s.leader, term: s.term };
    }
    await sleep(50);
  }
  throw new Error('no leader elected');
}

async function main(): Promise<number> {
  rmSync(DATA, { recursive: true, force: true });
  const addresses: Record<string, string> = {};
  for (const id of IDS) addresses[id] = `127.0.0.1:${await freePort()}`;
  say(`starting members ${IDS.map((id) => `${id}@${addresses[id]}`).join(', ')}; data in ./.demo-data/`);
  const members = IDS.map((id) => new Member(id, addresses, join(DATA, id)));
  const failures: string[] = [];
  try {
    await Promise.all(members.map((m) => m.start()));
    const first = await leaderOf(members);
    say(`leader elected: ${first.leader} (term ${first.term})`);

    // acknowledged writes, from every member, as reported when they were acknowledged
    const acked = new Map<string, number>();
    const ackTimes: number[] = [];
    let writeErrors = 0;
    let watchEvents = 0;
    let duplicateEvents = 0;
    let lastWatched = 0;
    const watched = new Set<string>();
    const onReport = (r: Report): void => {
      if (r.kind === 'ack') {
        acked.set(r.key, r.revision);
        ackTimes.push(r.at);
      } else if (r.kind === 'writeError') {
        writeErrors++;
      } else if (r.kind === 'watchEvent') {
        watchEvents++;
        if (watched.has(r.key)) duplicateEvents++;
        watched.add(r.key);
        lastWatched = Math.max(lastWatched, r.revision);
        if (watchEvents <= 3 || watchEvents % 500 === 0) say(`watcher on ${r.id}: ${r.type} ${r.key} rev=${r.revision} (${watchEvents} events so far)`);
      }
    };
    for (const m of members) m.listeners.add(onReport);

    // a watcher on the Raft leader follows every write; when the leader is
    // killed, the watch is resumed on the restarted member from the next revision
    const watcher = members.find((m) => m.id === first.leader)!;
    watcher.send({ op: 'watch', prefix: 'demo/w/', startRevision: 0 });
    say('writers on a, b and c start writing keys under demo/w/, and clients get, put and compare-and-swap demo/reg/0..2');
    for (const m of members) m.send({ op: 'write', on: true });
    await sleep(2_000);
    say(`${acked.size} writes acknowledged so far`);

    // mutex: every member takes the lock three times; each holder writes its fencing token
    say('mutex: a, b and c each take demo/lock three times (holding it 100 ms each)');
    const holds: { id: string; token: number; from: number; to: number }[] = [];
    const onLock = (r: Report): void => {
      if (r.kind === 'locked') say(`  ${r.id} holds the lock, fencing token ${r.token}`);
      if (r.kind === 'unlocked') {
        const from = lockedAt.get(`${r.id}/${r.token}`) ?? r.at;
        holds.push({ id: r.id, token: r.token, from, to: r.at });
      }
      if (r.kind === 'locked') lockedAt.set(`${r.id}/${r.token}`, r.at);
    };
    const lockedAt = new Map<string, number>();
    for (const m of members) m.listeners.add(onLock);
    await Promise.all(members.map((m) => m.ask({ op: 'lock', rounds: 3, holdMs: 100 }, 'lockDone', 20_000)));
    for (const m of members) m.listeners.delete(onLock);
    holds.sort((x, y) => x.from - y.from);
    let handOffs = 0;
    for (let i = 1; i < holds.length; i++) {
      const prev = holds[i - 1]!;
      const cur = holds[i]!;
      if (cur.token <= prev.token) failures.push(`fencing tokens went back: ${prev.id}@${prev.token} then ${cur.id}@${cur.token}`);
      if (cur.from < prev.to) failures.push(`${cur.id} held the lock while ${prev.id} still did`);
      if (cur.id !== prev.id) handOffs++;
    }
    if (holds.length !== 9) failures.push(`expected 9 lock holds, saw ${holds.length}`);
    say(`mutex: ${holds.length} holds, ${handOffs} hand-offs between members, tokens strictly increasing`);

    // election: every member campaigns; each leads 200 ms and resigns, handing over to the next
    say('election: a, b and c campaign for demo/election');
    const winners: { id: string; term: number; from: number; to: number }[] = [];
    const onElect = (r: Report): void => {
      if (r.kind === 'elected') {
        winners.push({ id: r.id, term: r.term, from: r.at, to: Number.POSITIVE_INFINITY });
        say(`  ${r.id} is the elected leader (term ${r.term})`);
      }
      if (r.kind === 'resigning') {
        const w = winners.find((x) => x.id === r.id && x.term === r.term);
        if (w !== undefined) w.to = r.at;
      }
    };
    for (const m of members) m.listeners.add(onElect);
    await Promise.all(members.map((m) => m.ask({ op: 'campaign', holdMs: 200 }, 'electionDone', 20_000)));
    for (const m of members) m.listeners.delete(onElect);
    if (winners.length !== 3 || new Set(winners.map((w) => w.id)).size !== 3) failures.push(`expected each member to win once, winners: ${winners.map((w) => w.id).join(', ')}`);
    winners.sort((x, y) => x.from - y.from);
    for (let i = 1; i < winners.length; i++) {
      const prev = winners[i - 1]!;
      const cur = winners[i]!;
      if (cur.term <= prev.term) failures.push('election terms did not increase');
      // each leader did its work (a txn guarded by its leadership) between
      // its election and its resignation: two leaderships never overlap
      if (cur.from < prev.to) failures.push(`${cur.id} led (term ${cur.term}) while ${prev.id} still did (term ${prev.term})`);
    }

    // kill the leader while writes go on
    const before = await leaderOf(members);
    const victim = members.find((m) => m.id === before.leader)!;
    const killedAt = Date.now();
    say(`SIGKILL the leader ${victim.id} (term ${before.term})`);
    victim.kill();
    const after = await leaderOf(members.filter((m) => m !== victim));
    say(`new leader: ${after.leader} (term ${after.term}) after ${Date.now() - killedAt} ms`);
    await sleep(1_500);
    // unavailability: the longest gap between consecutive acknowledgements around the kill
    const window = ackTimes.filter((t) => t >= killedAt - 1_000).sort((x, y) => x - y);
    let failoverMs = 0;
    for (let i = 1; i < window.length; i++) failoverMs = Math.max(failoverMs, window[i]! - window[i - 1]!);
    if (!window.some((t) => t > killedAt)) failures.push('no write was acknowledged after the leader was killed');
    say(`the cluster could not write for ${failoverMs} ms`);

    say(`restarting ${victim.id} from its data directory`);
    await victim.start();
    victim.listeners.add(onReport);
    if (victim === watcher) {
      say(`resuming the watch on ${victim.id} from revision ${lastWatched + 1}`);
      victim.send({ op: 'watch', prefix: 'demo/w/', startRevision: lastWatched + 1 });
    }
    await sleep(1_000);
    for (const m of members) m.send({ op: 'write', on: false });
    await sleep(500);

    // wait for the restarted member to catch up, then compare all three
    const target = Math.max(...(await Promise.all(members.map((m) => m.ask({ op: 'status' }, 'status')))).map((s) => s.revision));
    say(`writes stopped at revision ${target}; waiting for ${victim.id} to catch up`);
    const dumps = await Promise.all(members.map((m) => m.ask({ op: 'dump', prefix: 'demo/w/', atLeast: target }, 'dump', 15_000)));
    for (const d of dumps) say(`member ${d.id}: revision ${d.revision}, ${d.kvs.length} keys, hash ${d.hash.toString(16)}`);

    let lost = 0;
    for (const d of dumps) {
      const have = new Map(d.kvs.map(([k, , mod]) => [k, mod]));
      for (const [key, rev] of acked) {
        if (have.get(key) !== rev) {
          lost++;
          if (lost <= 5) failures.push(`member ${d.id}: acknowledged write ${key}@${rev} is ${have.has(key) ? `at ${have.get(key)}` : 'missing'}`);
        }
      }
    }
    await sleep(300);
    const unseen = [...acked.keys()].filter((k) => !watched.has(k));
    if (unseen.length > 0) failures.push(`the watcher missed ${unseen.length} acknowledged writes, e.g. ${unseen[0]}`);
    if (duplicateEvents > 0) failures.push(`the watcher saw ${duplicateEvents} events twice`);
    const revisions = new Set(dumps.map((d) => d.revision));
    const hashes = new Set(dumps.map((d) => d.hash));
    if (revisions.size !== 1) failures.push(`members ended at different revisions: ${[...revisions].join(', ')}`);
    if (hashes.size !== 1) failures.push(`members have different KV hashes: ${[...hashes].map((h) => h.toString(16)).join(', ')}`);

    // the register clients' histories: one file per process, in its member's data directory
    const registerHistory = new KvHistoryMerger();
    for (const id of IDS) {
      for (const f of readdirSync(join(DATA, id)).filter((name) => name.startsWith('history-'))) {
        for (const event of KvEventFile.read(join(DATA, id, f))) registerHistory.add(`${id}/${f}`, event);
      }
    }
    const checkStarted = performance.now();
    const verdict = registerHistory.check({ timeoutMs: 30_000 });
    const checkMs = Math.round(performance.now() - checkStarted);
    const registerOps = registerHistory.operations();
    if (!verdict.ok) failures.push(`the register clients' history is not linearizable:\n${verdict.describe()}`);
    say(`register history: ${verdict.checked} operations from ${new Set(registerOps.map((o) => o.clientId)).size} clients, ${verdict.result === 'ok' ? 'linearizable' : verdict.result} (checked in ${checkMs} ms)`);

    const holdsCount = holds.length;
    const handOffCount = handOffs;
    const winnerList = winners.map((w) => `${w.id}(${w.term})`).join(' ');
    console.log('');
    console.table({
      'writes acknowledged': acked.size,
      'writes lost': lost,
      'write errors (retried)': writeErrors,
      'watch events seen (duplicates)': `${watchEvents} (${duplicateEvents})`,
      'register operations (unknown outcome)': `${registerOps.length} (${registerOps.filter((o) => o.status === 'unknown').length})`,
      'register history': verdict.result === 'ok' ? 'linearizable' : verdict.result,
      'lock holds / hand-offs': `${holdsCount} / ${handOffCount}`,
      'election winners (term)': winnerList,
      'killed leader': victim.id,
      'new leader': after.leader,
      'failover (ms)': failoverMs,
      'final revision (a/b/c)': dumps.map((d) => d.revision).join(' / '),
    });
  } catch (err) {
    failures.push((err as Error).message);
  } finally {
    await Promise.all(members.map((m) => m.stop()));
  }
  if (failures.length > 0) {
    console.error('\nDEMO FAILED:');
    for (const f of failures) console.error(`  - ${f}`);
    return 1;
  }
  say('demo passed: every acknowledged write is on all three members with identical revisions, and the register history is linearizable');
  return 0;
}

process.exitCode = await main();
