// The TypeScript examples of README.md and docs/*.md (every ```ts block)
// are true to the package: each type-checks against the entry points
// (`quorumkv` is mapped to src/index.ts, `quorumkv/testing` to
// src/testing/index.ts) under strict options, in one program, each block a
// module of its own with the names it takes from its surroundings (`node`,
// a callback of the reader's, the imports shown once at the top of its
// document) declared in the tables below, not in the documents; an
// interface a document restates for its reader (`StateMachine`,
// `Transport`) is the same as the package's; no promise is left floating
// (a call whose promise is neither awaited, returned, passed on nor given a
// rejection handler: a missing `await`); every import names a path a
// reader can import and a name that path exports; and no example hides
// from these checks in another fence language (```typescript, ```js) or in
// a fence of another language. A block is left out only when the line
// before its fence says why, `<!-- not-checked: reason -->`: the test
// prints each such block, and fails on a marker without a reason or that
// stands before no ```ts fence. A failure names the document, the line and
// the compiler's message. Read with the TypeScript compiler API;
// deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { resolve } from 'node:path';
import ts from 'typescript';
import { allDocuments, fences, strayMarkers, type Fence } from './doc-fences.js';
import { strictCompilerOptions } from './ts-options.js';

const ROOT = resolve('.');
const ENTRIES: Record<string, string> = { quorumkv: 'src/index.ts', 'quorumkv/testing': 'src/testing/index.ts' };

/** One program: the package's entry points and the `extra` files (name to text). */
function program(extra: Map<string, string>): ts.Program {
  const options: ts.CompilerOptions = {
    ...strictCompilerOptions(),
    baseUrl: ROOT,
    paths: Object.fromEntries(Object.entries(ENTRIES).map(([specifier, file]) => [specifier, [file]])),
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) => {
    const text = extra.get(name);
    return text !== undefined ? ts.createSourceFile(name, text, lang, true) : getSourceFile(name, lang, onError, create);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => extra.has(name) || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => extra.get(name) ?? readFile(name);
  return ts.createProgram([...Object.values(ENTRIES).map((f) => resolve(ROOT, f)), ...extra.keys()], options, host);
}

/**
 * Per document, what its examples take from their surroundings: imports and
 * ambient declarations, typed as the text around the example says. One
 * entry may be for the examples that contain a string (`within`): the one
 * of a name that comes first wins. The imports of a document's examples
 * count as surroundings of all its examples (a reader reads them once, at
 * the top).
 */
const SURROUNDINGS: Record<string, { within?: string; code: string }[]> = {
  'README.md': [
    {
      code: `
declare const node: import('quorumkv').KvNode;
declare function stopWorking(): void;
declare function writeReport(options: { fencingToken: number }): Promise<void>;
`,
    },
  ],
  'docs/api.md': [{ code: `declare const node: import('quorumkv').KvNode;` }],
  'docs/concurrency.md': [
    {
      // "a test cluster (anything with now(), setTimeout() and clearTimeout() in ms, such as the node layer's VirtualClock)"
      within: 'cluster.clock',
      code: `
declare const member: import('quorumkv').KV;
declare const cluster: { readonly clock: import('quorumkv').VirtualClock };
`,
    },
    {
      code: `
import type { HeldLock, KvNode } from 'quorumkv';
declare const node: KvNode;
declare const workerNode: KvNode;
declare const session: Session;
declare const mutex: Mutex;
declare const lock: HeldLock;
declare const data: string;
declare const signal: AbortSignal;
declare function chargeCustomers(options: { fencingToken: number; signal?: AbortSignal }): Promise<void>;
declare function readCatalog(): Promise<unknown>;
declare const changes: unknown;
declare function writeCatalog(changes: unknown, options: { fencingToken: number }): Promise<void>;
declare function stopScheduling(): void;
declare function processMyShard(): Promise<void>;
`,
    },
  ],
  'docs/mvcc.md': [
    {
      code: `
import type { ClassicLevel } from 'classic-level';
import type { Entry, WriteRequest } from 'quorumkv';
declare const db: ClassicLevel;
declare const key: Uint8Array;
declare const value: Uint8Array;
declare const rangeEnd: Uint8Array;
declare const request: WriteRequest;
declare const committed: Entry[];
`,
    },
  ],
  'docs/node.md': [
    {
      code: `
import { RaftNode, LevelLogStorage, TcpTransport, type ApplyEntry, type StateMachine, type StateMachineSnapshot } from 'quorumkv';
declare const counters: StateMachine<number>;
declare const bytes: Uint8Array;
`,
    },
  ],
  'docs/operations.md': [
    {
      within: 'dirOf(id)',
      code: `
declare const survivor: KvNode;
declare const members: Record<string, string>; // as this document's restore example writes them
declare function dirOf(id: string): string;
`,
    },
    {
      code: `
import * as http from 'node:http';
import { KvNode, type KvNodeOptions } from 'quorumkv';
declare const node: KvNode;
declare const members: readonly KvNode[];
declare const options: KvNodeOptions;
`,
    },
  ],
  'docs/raft.md': [
    {
      code: `
import type { Entry, Transport } from 'quorumkv';
declare const transport: Transport;
declare function apply(entry: Entry): void;
`,
    },
  ],
  'docs/storage.md': [{ code: `declare const rd: import('quorumkv').Ready;` }],
  'docs/testing.md': [
    {
      code: `
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KV, KvNode, Mutex } from 'quorumkv';
import { KvEventFile, KvEventSink, KvHistoryMerger, RecordingKV, definitelyNotApplied, type KvInput, type KvOutput, type WatchEventRecord, type WatchStreamRecord } from 'quorumkv/testing';
declare const node: KvNode;
declare const kv: KV;
declare function work(kv: KV): Promise<void>;
declare const dir: string;
declare const rec: HistoryRecorder<KvInput, KvOutput>;
declare const committed: WatchEventRecord[];
declare const streams: WatchStreamRecord[];
declare const sim: Simulation;
declare const mutex: Mutex;
`,
    },
  ],
  'docs/transport.md': [
    {
      code: `
import { MemoryNetwork, TcpTransport, type Message, type NetworkEvent, type Scheduler, type TransportHandler } from 'quorumkv';
declare const key: string;
declare const cert: string;
declare const ca: string;
declare const handler: TransportHandler;
declare const scheduler: Scheduler;
declare function onEvent(event: NetworkEvent): void;
`,
    },
  ],
};

/**
 * Per document, the package's types its examples restate (an interface as
 * the reader implements it): each must declare the same members as the
 * package's, of types assignable both ways.
 */
const RESTATED: Record<string, string[]> = {
  'docs/node.md': ['StateMachine'],
  'docs/transport.md': ['SnapshotStatus', 'TransportHandler', 'Transport'],
};

/** Code that type-checks only when the type `name` an example declares (with `params` type parameters) is the same as `quorumkv`'s. */
function sameAsPackage(name: string, params: number): string {
  const args = params === 0 ? '' : `<${Array(params).fill('unknown').join(', ')}>`;
  const shown = `${name}${args}`;
  const pkg = `import('quorumkv').${name}${args}`;
  return [
    `declare const shown_${name}: ${shown}; const asPackage_${name}: ${pkg} = shown_${name};`,
    `declare const package_${name}: ${pkg}; const asShown_${name}: ${shown} = package_${name};`,
    `const sameKeys_${name}: [keyof ${shown}] extends [keyof ${pkg}] ? ([keyof ${pkg}] extends [keyof ${shown}] ? true : false) : false = true;`,
  ].join('\n');
}

/** Each name a piece of module code declares at its top level, with the statement (one import per name) that declares it. */
function declarations(code: string): { names: string[]; text: string }[] {
  const sf = ts.createSourceFile('x.ts', code, ts.ScriptTarget.ES2022, true);
  const out: { names: string[]; text: string }[] = [];
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st)) {
      const c = st.importClause;
      if (c === undefined) continue;
      const from = st.moduleSpecifier.getText();
      const kind = c.isTypeOnly ? 'import type' : 'import';
      if (c.name !== undefined) out.push({ names: [c.name.text], text: `${kind} ${c.name.text} from ${from};` });
      const b = c.namedBindings;
      if (b !== undefined && ts.isNamespaceImport(b)) out.push({ names: [b.name.text], text: `${kind} * as ${b.name.text} from ${from};` });
      else if (b !== undefined) for (const e of b.elements) out.push({ names: [e.name.text], text: `${kind} { ${e.getText()} } from ${from};` });
      continue;
    }
    out.push({ names: [...declaredNames(st)], text: st.getText() });
  }
  return out;
}

/** The names a top-level statement declares (variables, functions, classes, types; imports are split by {@link declarations}). */
function declaredNames(st: ts.Statement): Set<string> {
  const names = new Set<string>();
  const bind = (n: ts.BindingName): void => {
    if (ts.isIdentifier(n)) names.add(n.text);
    else for (const e of n.elements) if (!ts.isOmittedExpression(e)) bind(e.name);
  };
  if (ts.isVariableStatement(st)) {
    for (const d of st.declarationList.declarations) bind(d.name);
  } else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st) || ts.isEnumDeclaration(st)) && st.name !== undefined) {
    names.add(st.name.text);
  }
  return names;
}

type Example = Fence;

/** The TypeScript examples (```ts blocks) of a document, but those marked `<!-- not-checked: reason -->`. */
function examples(doc: string): Example[] {
  return fences(doc).filter((f) => f.lang === 'ts' && f.notChecked === undefined);
}

/** The documents with TypeScript examples. */
function documents(): string[] {
  return allDocuments().filter((d) => examples(d).length > 0);
}

/**
 * `doc:line` of a position in an example's module; past the example, in
 * what the test added to it, the document and the added line, or undefined
 * for an import added from another example of the document (reported there).
 */
function where(m: Module, pos: number): string | undefined {
  const at = m.sf.getLineAndCharacterOfPosition(pos).line;
  if (at < m.ex.code.split('\n').length - 1) return `${m.ex.doc}:${m.ex.line + at}`;
  const text = m.sf.text.split('\n')[at]!;
  if (m.borrowed.has(text)) return undefined;
  return `${m.ex.doc} (in \`${text.trim().slice(0, 100)}\`, which this test adds to its examples)`;
}

/** An example's module in the program. */
interface Module {
  ex: Example;
  sf: ts.SourceFile;
  /** The imports added to it from the document's other examples. */
  borrowed: Set<string>;
}

interface Checked {
  program: ts.Program;
  /** Each example's module. */
  modules: Module[];
  /** The documents whose restated types are no longer restated, with those types. */
  unrestated: string[];
}

let built: Checked | undefined;

/**
 * Every example a module of its own: the example, then its surroundings
 * (the imports of its document's examples and the document's declarations,
 * each for a name the example does not declare itself; appended, so that
 * the example's lines keep their numbers: imports and ambient declarations
 * hold anywhere in a module), all in one program.
 */
function build(): Checked {
  if (built !== undefined) return built;
  const files = new Map<string, string>();
  const origin = new Map<string, { ex: Example; borrowed: Set<string> }>();
  const unrestated: string[] = [];
  for (const doc of documents()) {
    const all = examples(doc);
    const imports = all.flatMap((ex) => declarations(ex.code).filter((d) => d.text.startsWith('import')));
    const restated = new Set(RESTATED[doc] ?? []);
    all.forEach((ex, i) => {
      const own = new Set(declarations(ex.code).flatMap((d) => d.names));
      const checks: string[] = [];
      for (const st of ts.createSourceFile('x.ts', ex.code, ts.ScriptTarget.ES2022, true).statements) {
        if ((ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st)) && restated.delete(st.name.text)) {
          checks.push(sameAsPackage(st.name.text, st.typeParameters?.length ?? 0));
        }
      }
      const around = [...(SURROUNDINGS[doc] ?? []).filter((s) => s.within === undefined || ex.code.includes(s.within)).flatMap((s) => declarations(s.code)), ...imports];
      const added = new Set<string>();
      const extra = around.filter((d) => {
        if (d.names.some((n) => own.has(n) || added.has(n))) return false;
        for (const n of d.names) added.add(n);
        return true;
      });
      const file = resolve(ROOT, `doc-examples/${doc.replace(/[/.]/g, '_')}_${i}.ts`);
      files.set(file, `${ex.code}${[...extra.map((d) => d.text), ...checks].join('\n')}\nexport {};\n`);
      origin.set(file, { ex, borrowed: new Set(extra.filter((d) => imports.includes(d)).map((d) => d.text)) });
    });
    if (restated.size > 0) unrestated.push(`${doc}: ${[...restated].join(', ')}`);
  }
  const p = program(files);
  const modules = [...files.keys()].map((file) => ({ ...origin.get(file)!, sf: p.getSourceFile(file)! }));
  built = { program: p, modules, unrestated };
  return built;
}

test('no TypeScript example of the documents hides outside a ```ts fence, where the checks below read it', () => {
  const hidden: string[] = [];
  for (const doc of allDocuments()) {
    for (const f of fences(doc)) {
      if (f.lang === 'ts') continue;
      if (/^(typescript|tsx?|mts|cts|jsx?|mjs|cjs|javascript)$/i.test(f.lang)) hidden.push(`${doc}:${f.line - 1}: a \`\`\`${f.lang} block (TypeScript examples are \`\`\`ts, and checked)`);
      else if (/\bfrom\s+['"]quorumkv/.test(f.code)) hidden.push(`${doc}:${f.line - 1}: a \`\`\`${f.lang} block imports the package (a TypeScript example belongs in a \`\`\`ts block)`);
    }
  }
  assert.deepEqual(hidden, [], `examples the checks below would not read:\n  ${hidden.join('\n  ')}`);
  const docs = documents();
  for (const d of ['README.md', 'docs/api.md', 'docs/concurrency.md', 'docs/testing.md']) assert.ok(docs.includes(d), `${d} has no ts examples`);
  // the examples left out on purpose: said, with a reason, next to each
  const left = allDocuments().flatMap((d) => fences(d).filter((f) => f.lang === 'ts' && f.notChecked !== undefined));
  console.log(`${left.length} \`\`\`ts blocks marked not-checked${left.map((f) => `\n  ${f.doc}:${f.line - 1}: ${f.notChecked}`).join('')}`);
  assert.deepEqual(left.filter((f) => f.notChecked === '').map((f) => `${f.doc}:${f.line - 1}`), [], 'not-checked markers without a reason');
  assert.deepEqual(allDocuments().flatMap(strayMarkers), [], 'not-checked markers that are not `<!-- not-checked: reason -->` on the line before a ```ts fence');
  assert.ok(docs.flatMap(examples).length >= 30, `only ${docs.flatMap(examples).length} ts examples read`);
});

test('the TypeScript examples of README.md and docs/*.md type-check against the package', () => {
  const { program: p, modules, unrestated } = build();
  assert.deepEqual(unrestated, [], 'documents no longer restate these types');
  const stale = Object.entries(SURROUNDINGS).flatMap(([doc, entries]) =>
    entries.filter((s) => s.within !== undefined && !modules.some((m) => m.ex.doc === doc && m.ex.code.includes(s.within!))).map((s) => `${doc}: ${s.within}`),
  );
  assert.deepEqual(stale, [], 'SURROUNDINGS entries for examples no document has any more');
  const errors = new Set<string>();
  for (const m of modules) {
    for (const d of ts.getPreEmitDiagnostics(p, m.sf)) {
      const at = d.file === m.sf && d.start !== undefined ? where(m, d.start) : `${m.ex.doc}:${m.ex.line}${d.file !== undefined ? ` (in ${d.file.fileName})` : ''}`;
      if (at !== undefined) errors.add(`${at}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    }
  }
  assert.deepEqual([...errors], [], `${errors.size} diagnostics in the documents' examples:\n  ${[...errors].join('\n  ')}`);
});

/** Whether a type is a promise (or a union holding one): it has a callable `then`. */
function isThenable(checker: ts.TypeChecker, type: ts.Type, at: ts.Node): boolean {
  if (type.isUnion()) return type.types.some((t) => isThenable(checker, t, at));
  const then = type.getProperty('then');
  return then !== undefined && checker.getTypeOfSymbolAtLocation(then, at).getCallSignatures().length > 0;
}

test('no example leaves a promise floating (a missing await)', () => {
  const { program: p, modules } = build();
  const checker = p.getTypeChecker();
  const floating: string[] = [];
  for (const m of modules) {
    const { ex, sf } = m;
    const end = ex.code.length;
    const visit = (n: ts.Node): void => {
      if (n.getStart(sf) >= end) return;
      if (ts.isExpressionStatement(n)) {
        let e = n.expression;
        while (ts.isParenthesizedExpression(e)) e = e.expression;
        // awaited, or dropped on purpose
        const handled =
          ts.isAwaitExpression(e) ||
          ts.isVoidExpression(e) ||
          // node:test's test() at a module's top level, as its documentation calls it
          (ts.isCallExpression(e) && ts.isIdentifier(e.expression) && ['test', 'describe', 'it', 'suite'].includes(e.expression.text) && ts.isSourceFile(n.parent)) ||
          // a rejection handler: p.catch(f), p.then(f, g)
          (ts.isCallExpression(e) && ts.isPropertyAccessExpression(e.expression) && (e.expression.name.text === 'catch' || (e.expression.name.text === 'then' && e.arguments.length === 2)));
        if (!handled && isThenable(checker, checker.getTypeAtLocation(e), e)) {
          floating.push(`${where(m, e.getStart(sf))}: \`${e.getText(sf).split('\n')[0]!.slice(0, 80)}\` is a promise neither awaited nor handled`);
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  assert.deepEqual(floating, [], `${floating.length} floating promises:\n  ${floating.join('\n  ')}`);
});

test('every import of an example is of an entry point of the package, Node or a dependency, and names what it exports', () => {
  const { program: p, modules } = build();
  const checker = p.getTypeChecker();
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies?: Record<string, string>; exports: Record<string, unknown> };
  const exportsOf = new Map<string, Set<string>>();
  for (const [specifier, file] of Object.entries(ENTRIES)) {
    assert.ok(`.${specifier.slice('quorumkv'.length)}` in pkg.exports, `${specifier} is not in package.json's exports`);
    const mod = checker.getSymbolAtLocation(p.getSourceFile(resolve(ROOT, file))!)!;
    exportsOf.set(specifier, new Set(checker.getExportsOfModule(mod).map((s) => s.name)));
  }
  const deps = new Set(Object.keys(pkg.dependencies ?? {}));
  const wrong: string[] = [];
  let named = 0;
  for (const m of modules) {
    const { ex, sf } = m;
    for (const st of sf.statements) {
      if (st.getStart(sf) >= ex.code.length || !ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier)) continue;
      const specifier = st.moduleSpecifier.text;
      const at = where(m, st.getStart(sf))!;
      const names = exportsOf.get(specifier);
      if (names === undefined) {
        const bare = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
        const node = specifier.startsWith('node:') && isBuiltin(specifier);
        if (!node && !deps.has(bare)) wrong.push(`${at}: '${specifier}' is neither an entry point of the package (${Object.keys(ENTRIES).join(', ')}), a node: module nor a dependency`);
        continue;
      }
      const c = st.importClause;
      if (c?.name !== undefined) wrong.push(`${at}: '${specifier}' has no default export (import { ${c.name.text} })`);
      const b = c?.namedBindings;
      if (b === undefined || ts.isNamespaceImport(b)) continue;
      for (const e of b.elements) {
        const name = (e.propertyName ?? e.name).text;
        named++;
        if (!names.has(name)) wrong.push(`${at}: '${specifier}' exports no ${name}`);
      }
    }
  }
  assert.ok(named >= 25, `only ${named} imported names read`);
  assert.deepEqual(wrong, [], `${wrong.length} imports name what the package does not export:\n  ${wrong.join('\n  ')}`);
});
