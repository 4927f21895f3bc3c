// Some examples of README.md and docs/*.md, run as written, in one process:
// the text of the ```ts block is taken from the document (so a change to
// the example is what runs), its imports resolved to the sources, and its
// statements run as the body of an async function given the names it takes
// from its surroundings (the `node` the text speaks of, the reader's own
// callbacks, `process` and `console`, to see what it prints). Where an
// example opens members over TCP with a data directory, `KvNode.open` opens
// them instead on a MemoryNetwork with in-memory databases and short Raft
// timings: the example's other options as given. That the examples
// type-check is doc-examples.test.ts's to check; here, that they do what
// their text says they do. Real time, short timeouts (a few seconds in all).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import ts from 'typescript';
import * as quorumkv from '../../src/index.js';
import * as quorumkvTesting from '../../src/testing/index.js';
import { KvNode, MemoryNetwork, Session, isQuorumError, text, type KvNodeOptions } from '../../src/index.js';
import { fences, tsBlock, type Fence } from './doc-fences.js';

type Scope = Record<string, unknown>;
type Modules = Record<string, unknown>;

const AsyncFunction = (async () => undefined).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<unknown>;

/**
 * Runs a ```ts block: its imports, and those of the document's other ```ts
 * blocks, become reads of `modules` (a specifier missing there is imported
 * as usual), the rest the body of an async function whose parameters are
 * the names of `scope`. Resolves with what
 * the body resolves with; a failure names the example.
 */
async function run(ex: Fence, scope: Scope, modules: Modules = {}): Promise<unknown> {
  // the imports a document shows once, in one of its examples, hold for all of them (but for the names given)
  const own = new Set([...importedNames(ex.code), ...Object.keys(scope)]);
  const shared = fences(ex.doc)
    .filter((f) => f.lang === 'ts' && f !== ex)
    .flatMap((f) => ts.createSourceFile('x.ts', f.code, ts.ScriptTarget.ES2022, true).statements.filter(ts.isImportDeclaration))
    .filter((st) => !importedNames(st.getText()).some((n) => own.has(n)))
    .map((st) => st.getText());
  const js = ts.transpileModule(`${[...new Set(shared)].join('\n')}\n${ex.code}`, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const sf = ts.createSourceFile('example.js', js, ts.ScriptTarget.ES2022, true);
  const body: string[] = [];
  const mods: Modules = {};
  for (const st of sf.statements) {
    if (ts.isExportDeclaration(st)) continue;
    if (!ts.isImportDeclaration(st)) {
      body.push(st.getFullText(sf));
      continue;
    }
    const from = (st.moduleSpecifier as ts.StringLiteral).text;
    mods[from] ??= from in modules ? modules[from] : await import(from);
    const m = `__modules[${JSON.stringify(from)}]`;
    const c = st.importClause;
    if (c?.name !== undefined) body.unshift(`const ${c.name.text} = ${m}.default;`);
    const b = c?.namedBindings;
    if (b !== undefined && ts.isNamespaceImport(b)) body.unshift(`const ${b.name.text} = ${m};`);
    else if (b !== undefined) body.unshift(`const { ${b.elements.map((e) => (e.propertyName !== undefined ? `${e.propertyName.text}: ${e.name.text}` : e.name.text)).join(', ')} } = ${m};`);
  }
  const fn = new AsyncFunction('__modules', ...Object.keys(scope), body.join('\n'));
  try {
    return await fn(mods, ...Object.values(scope));
  } catch (err) {
    throw new Error(`the example at ${ex.doc}:${ex.line - 1} failed: ${isQuorumError(err) ? `${err.code} ` : ''}${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The names the imports of a piece of code bind. */
function importedNames(code: string): string[] {
  const out: string[] = [];
  for (const st of ts.createSourceFile('x.ts', code, ts.ScriptTarget.ES2022, true).statements) {
    if (!ts.isImportDeclaration(st) || st.importClause === undefined) continue;
    const c = st.importClause;
    if (c.name !== undefined) out.push(c.name.text);
    const b = c.namedBindings;
    if (b !== undefined && ts.isNamespaceImport(b)) out.push(b.name.text);
    else if (b !== undefined) out.push(...b.elements.map((e) => e.name.text));
  }
  return out;
}

/** A console whose `log` and `error` lines are kept (each line: the arguments joined by a space). */
function recordingConsole(): { console: Pick<Console, 'log' | 'error'>; lines: string[] } {
  const lines: string[] = [];
  const record = (...args: unknown[]): void => void lines.push(args.map(String).join(' '));
  return { console: { log: record, error: record }, lines };
}

/** Resolves once `cond()` holds; fails after `ms` naming `what`. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Election jitter per member: 'a' times out first, so a cluster elects its
 * first leader in one election timeout, well before two election timeouts
 * without one fail calls at once with QUORUMKV_NO_LEADER (a split vote, and
 * a second round, are left out).
 */
const JITTER: Record<string, number> = { a: 0, b: 0.5, c: 0.9 };

/**
 * Members in this process: `KvNode.open` of the examples opens each on a
 * MemoryNetwork and an in-memory database of its id (kept across opens),
 * with short Raft timings (an election timeout of 500 ms, as tickMs 50)
 * and the jitter above; `members` gives the ids (its addresses are not
 * used), and `dataDir` is left out.
 */
class InProcess {
  readonly net = new MemoryNetwork({ seed: 1 });
  readonly dbs = new Map<string, MemoryLevel<Uint8Array, Uint8Array>>();
  readonly nodes: KvNode[] = [];
  readonly sessions: Session[] = [];

  constructor(
    readonly requestTimeoutMs = 3_000,
    readonly tickMs = 50,
  ) {}

  async open(options: KvNodeOptions): Promise<KvNode> {
    const { dataDir: _dataDir, members, ...rest } = options;
    let db = this.dbs.get(options.id);
    if (db === undefined) {
      db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
      this.dbs.set(options.id, db);
    }
    const node = await KvNode.open({
      ...rest,
      ...(members !== undefined ? { members: Array.isArray(members) ? members : Object.keys(members) } : {}),
      transport: this.net.transport(options.id),
      db,
      tickMs: this.tickMs,
      random: () => JITTER[options.id] ?? 0.5,
      requestTimeoutMs: this.requestTimeoutMs,
    });
    this.nodes.push(node);
    return node;
  }

  /** `quorumkv` as the examples import it: `KvNode.open` opens members here; `Session.create` keeps the sessions, to close them after the example. */
  modules(): Modules {
    const kvNode = new Proxy(KvNode, { get: (target, p) => (p === 'open' ? (o: KvNodeOptions) => this.open(o) : Reflect.get(target, p, target)) });
    const session = new Proxy(Session, {
      get: (target, p) =>
        p === 'create'
          ? async (...args: Parameters<typeof Session.create>) => {
              const s = await Session.create(...args);
              this.sessions.push(s);
              return s;
            }
          : Reflect.get(target, p, target),
    });
    return { quorumkv: { ...quorumkv, KvNode: kvNode, Session: session }, 'quorumkv/testing': quorumkvTesting };
  }

  /** Three members a, b and c, opened here, once each knows the leader. */
  async three(): Promise<KvNode[]> {
    const nodes = await Promise.all(['a', 'b', 'c'].map((id) => this.open({ id, members: ['a', 'b', 'c'] })));
    await until(() => nodes.every((n) => n.status().leader !== ''), 'a leader');
    return nodes;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.sessions.map((s) => s.close()));
    await Promise.all(this.nodes.map((n) => n.close()));
    await Promise.all([...this.dbs.values()].map((db) => db.close()));
  }
}

test("README's embedding example, run in three members: each writes, reads its write back and watches the prefix until its member closes", async () => {
  const ex = tsBlock('README.md', 'KvNode.open(');
  const here = new InProcess();
  try {
    const out = new Map(['a', 'b', 'c'].map((id) => [id, recordingConsole()]));
    const runs = [...out].map(([id, c]) => run(ex, { process: { env: { MEMBER_ID: id } }, console: c.console }, here.modules()));
    const settled = Promise.allSettled(runs);
    // each printed its read: the value it wrote and its modRevision, then opened its watch
    await until(() => [...out.values()].every((c) => c.lines.length > 0), 'the three reads');
    for (const [id, c] of out) assert.match(c.lines[0]!, /^on [1-9]\d*$/, `${id} printed ${c.lines[0]}`);
    const node = here.nodes.find((n) => n.id === 'a')!;
    await node.put('config/feature-x', 'off');
    await node.put('config/other', 'x');
    await node.delete('config/other');
    for (const [id, c] of out) {
      await until(() => c.lines.includes('DELETE config/other '), `${id}'s watch to print the delete`);
      const tail = c.lines.slice(c.lines.indexOf('PUT config/feature-x off'));
      assert.deepEqual(tail, ['PUT config/feature-x off', 'PUT config/other x', 'DELETE config/other '], `${id} printed ${c.lines.join(' | ')}`);
    }
    // closing a member ends its watch: the example's loop, then the example, end
    await Promise.all(here.nodes.map((n) => n.close()));
    const results = await settled;
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled'], String(results.map((r) => (r.status === 'rejected' ? r.reason : ''))));
  } finally {
    await here.close();
  }
});

test("README's mutex example runs the reader's work under the lock with the lock key's createRevision as fencing token", async () => {
  const ex = tsBlock('README.md', 'new Mutex(');
  const here = new InProcess();
  try {
    const [node] = await here.three();
    const tokens: number[] = [];
    let stopped = 0;
    await run(ex, { node, stopWorking: () => stopped++, writeReport: async (o: { fencingToken: number }) => void tokens.push(o.fencingToken) }, here.modules());
    assert.equal(tokens.length, 1);
    const token = tokens[0]!;
    // the token is the revision that created the lock's key, `locks/reports/<lease>`
    const at = await node!.range({ key: 'locks/reports/', prefix: true, revision: token });
    assert.deepEqual(at.kvs.map((kv) => kv.createRevision), [token]);
    assert.equal(text(at.kvs[0]!.key), `locks/reports/${here.sessions[0]!.lease.toString(16)}`);
    // withLock released it
    assert.equal((await node!.range({ key: 'locks/reports/', prefix: true })).kvs.length, 0);
    assert.equal(stopped, 0, 'the session was lost');
  } finally {
    await here.close();
  }
});

test("docs/api.md's first example: alone of three, 'a' fails its write with QUORUMKV_TIMEOUT; as the one member of its cluster, as its comment says, it runs", async () => {
  const ex = tsBlock('docs/api.md', 'KvNode.open(');
  // the write times out (1 s) before two election timeouts without a leader (2 s) would fail new calls at once
  const here = new InProcess(1_000, 100);
  try {
    await assert.rejects(run(ex, { console: recordingConsole().console }, here.modules()), (err: Error) => isQuorumError(err.cause, 'QUORUMKV_TIMEOUT'));
  } finally {
    await here.close();
  }
  const alone = /members: \{ a: '[^']*' \}/.exec(ex.code);
  assert.ok(alone !== null, 'the comment no longer says how to found a one-member cluster');
  const one = { ...ex, code: ex.code.replace(/^\s*members: .*,$/m, `  ${alone[0]},`) };
  assert.notEqual(one.code, ex.code);
  const again = new InProcess();
  try {
    const c = recordingConsole();
    await run(one, { console: c.console }, again.modules());
    assert.deepEqual(c.lines, ['on 2']);
    assert.equal(again.nodes[0]!.status().raftTerm > 0, true);
  } finally {
    await again.close();
  }
});

test("docs/concurrency.md's fencing examples: the owner's txn writes; a token fence lets the current holder's write through and refuses a stale holder's", async () => {
  const owner = tsBlock('docs/concurrency.md', 'lock.isOwner()');
  const fence = tsBlock('docs/concurrency.md', "target: 'VALUE', result: 'LESS'");
  const here = new InProcess();
  try {
    const [node, other] = await here.three();
    const mutex = new quorumkv.Mutex(await Session.create(node!, { ttl: 10 }), 'locks/billing');
    const mods = here.modules();
    // the example takes the lock itself (`const lock = await mutex.lock()`)
    await run(owner, { node, mutex }, mods);
    assert.equal(text((await node!.get('orders/next-id'))?.value), '1042');
    const first = mutex.current!;
    await run(fence, { node, lock: first, data: 'report 1' }, mods);
    assert.equal(text((await node!.get('report'))?.value), 'report 1');
    await mutex.unlock();
    // a later holder, then the first one again, late: its write is refused
    const next = new quorumkv.Mutex(await Session.create(other!, { ttl: 10 }), 'locks/billing');
    const later = await next.lock();
    assert.ok(later.fencingToken > first.fencingToken);
    await run(fence, { node: other, lock: later, data: 'report 2' }, mods);
    await run(fence, { node, lock: first, data: 'stale report' }, mods);
    assert.equal(text((await node!.get('report'))?.value), 'report 2');
    assert.equal(text((await node!.get('fence'))?.value), String(later.fencingToken).padStart(16, '0'));
    await next.unlock();
    await next.session.close();
    await mutex.session.close();
  } finally {
    await here.close();
  }
});

test("docs/concurrency.md's STM example moves 10 from alice to bob in one txn, and writes nothing when alice has less", async () => {
  const ex = tsBlock('docs/concurrency.md', 'transact(node');
  const here = new InProcess();
  try {
    const [node] = await here.three();
    await node!.put('accounts/alice', '100');
    await node!.put('accounts/bob', '5');
    await run(ex, { node }, here.modules());
    assert.deepEqual([text((await node!.get('accounts/alice'))?.value), text((await node!.get('accounts/bob'))?.value)], ['90', '15']);
    await node!.put('accounts/alice', '5');
    const before = node!.status().revision;
    await assert.rejects(run(ex, { node }, here.modules()), (err: Error) => (err.cause as Error).message === 'insufficient funds');
    assert.equal(node!.status().revision, before, 'a write');
  } finally {
    await here.close();
  }
});

test("docs/concurrency.md's election examples: a candidate campaigns, writes under its term, proclaims and resigns; anyone reads and follows the leader", async () => {
  const candidate = tsBlock('docs/concurrency.md', 'new Election(');
  const observer = tsBlock('docs/concurrency.md', 'observeElection(node');
  const here = new InProcess();
  try {
    const [node, other] = await here.three();
    const session = await Session.create(node!, { ttl: 10 });
    here.sessions.push(session);
    await run(candidate, { node, session, signal: AbortSignal.timeout(5_000), stopScheduling: () => assert.fail('the session was lost') }, here.modules());
    const lastRun = await node!.get('jobs/last-run');
    assert.ok(lastRun !== undefined, 'the leader wrote nothing');
    // it resigned: its key is gone
    assert.equal((await node!.range({ key: 'elections/scheduler/', prefix: true })).kvs.length, 0);
    // another candidate leads: the observer prints it, then stops on its signal
    const next = new quorumkv.Election(await Session.create(other!, { ttl: 10 }), 'elections/scheduler');
    here.sessions.push(next.session);
    const term = (await next.campaign('host-b:8080')).term;
    assert.ok(term > lastRun.modRevision);
    const stop = new AbortController();
    const c = recordingConsole();
    await run(observer, { node, signal: stop.signal, console: { log: (...args: unknown[]) => (c.console.log(...args), stop.abort()) } }, here.modules());
    assert.deepEqual(c.lines, [`term ${term}: host-b:8080`]);
  } finally {
    await here.close();
  }
});

test("docs/concurrency.md's queue example: a job enqueued is the job dequeued, and leaves the queue", async () => {
  const ex = tsBlock('docs/concurrency.md', 'new Queue(');
  const here = new InProcess();
  try {
    const [node] = await here.three();
    const parsed: unknown[] = [];
    const json = { parse: (s: string) => (parsed.push(JSON.parse(s)), parsed.at(-1)), stringify: JSON.stringify };
    await run(ex, { node, signal: AbortSignal.timeout(5_000), JSON: json }, here.modules());
    assert.deepEqual(parsed, [{ to: 'ada@example.com' }]);
    assert.equal((await node!.range({ key: 'queues/emails', prefix: true })).kvs.length, 0);
  } finally {
    await here.close();
  }
});

test("docs/testing.md's KvHistory example records two workers' calls on a member and checks them linearizable", async () => {
  const ex = tsBlock('docs/testing.md', 'new KvHistory()');
  const here = new InProcess();
  try {
    const [node] = await here.three();
    let calls = 0;
    const work = async (kv: quorumkv.KV): Promise<void> => {
      for (let i = 0; i < 5; i++) {
        await kv.put('k', `${i}`);
        await kv.get('k');
        calls += 2;
      }
    };
    const ok: unknown[] = [];
    const spy = { ok: (value: unknown, message?: string) => (ok.push(value), assert.ok(value, message)) };
    await run(ex, { node, work, assert: spy }, here.modules());
    assert.equal(calls, 20);
    assert.deepEqual(ok, [true]);
  } finally {
    await here.close();
  }
});

test("docs/testing.md's simulation test passes", async () => {
  const ex = tsBlock('docs/testing.md', 'new Simulation(');
  const tests: (() => Promise<void>)[] = [];
  await run(ex, {}, { 'quorumkv/testing': quorumkvTesting, 'node:test': { test: (_name: string, fn: () => Promise<void>) => void tests.push(fn) } });
  assert.equal(tests.length, 1);
  await tests[0]!();
});
