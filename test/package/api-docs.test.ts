// The reference documents name the whole public surface they describe, and
// their examples compile: docs/api.md names every public member of KvNode
// and every option of KvNode.open; docs/concurrency.md every public member
// of the recipes' classes; the TypeScript examples of README.md and of
// every docs/*.md type-check against the package's entry points
// (`quorumkv` is mapped to src/index.ts, `quorumkv/testing` to
// src/testing/index.ts), in one program, with the names an example takes
// from its surroundings (`node`, a callback of the reader's, the imports
// shown once at the top of its document) declared, and an interface a
// document restates for its reader (`StateMachine`, `Transport`) the same
// as the package's. An option or method added without its documentation,
// or an example left behind by a change of the API, fails here. Read with
// the TypeScript compiler API; deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import ts from 'typescript';
import { strictCompilerOptions } from './ts-options.js';

const ROOT = resolve('.');

function program(extra: Map<string, string> = new Map()): ts.Program {
  const options: ts.CompilerOptions = {
    ...strictCompilerOptions(),
    baseUrl: ROOT,
    paths: { quorumkv: ['src/index.ts'], 'quorumkv/testing': ['src/testing/index.ts'] },
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) => {
    const text = extra.get(name);
    return text !== undefined ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, onError, create);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => extra.has(name) || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => extra.get(name) ?? readFile(name);
  return ts.createProgram([resolve(ROOT, 'src/index.ts'), ...extra.keys()], options, host);
}

/** The public member names of an exported class or interface of `quorumkv`, static ones included. */
function publicMembers(p: ts.Program, name: string): string[] {
  const checker = p.getTypeChecker();
  const mod = checker.getSymbolAtLocation(p.getSourceFile(resolve(ROOT, 'src/index.ts'))!)!;
  const exported = checker.getExportsOfModule(mod).find((s) => s.name === name);
  assert.ok(exported, `quorumkv exports no ${name}`);
  const sym = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
  const members = [...checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(sym))];
  if (sym.flags & ts.SymbolFlags.Class) members.push(...checker.getPropertiesOfType(checker.getTypeOfSymbol(sym)));
  const names = new Set<string>();
  for (const m of members) {
    const decls = (m.declarations ?? []).filter((d) => d.getSourceFile().fileName.startsWith(resolve(ROOT, 'src')));
    if (decls.length === 0 || m.name === 'prototype') continue;
    const hidden = decls.some((d) => {
      const n = (d as { name?: ts.Node }).name;
      return (n !== undefined && ts.isPrivateIdentifier(n)) || (ts.getCombinedModifierFlags(d) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !== 0;
    });
    if (!hidden) names.add(m.name);
  }
  return [...names].sort();
}

/** The names of `names` that `doc` never writes in backticks (`name`, `name(...)`, `x.name`, `{ name }`...). */
function unmentioned(doc: string, names: string[]): string[] {
  // fenced examples are code as a whole; the rest is read span by span
  const fences = [...doc.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const prose = doc.replace(/```[a-z]*\n[\s\S]*?```/g, '');
  const code = [...fences, ...[...prose.matchAll(/`([^`]+)`/g)].map((m) => m[1]!)].join('\n');
  return names.filter((n) => !new RegExp(`(^|[^A-Za-z0-9_$])${n}($|[^A-Za-z0-9_$])`, 'm').test(code));
}

test('docs/api.md names every public member of KvNode and every option of KvNode.open', () => {
  const p = program();
  const doc = readFileSync('docs/api.md', 'utf8');
  const methods = publicMembers(p, 'KvNode');
  assert.ok(methods.includes('put') && methods.includes('open'), `members read: ${methods.join(', ')}`);
  assert.deepEqual(unmentioned(doc, methods), [], 'KvNode members missing from docs/api.md');
  const options = publicMembers(p, 'KvNodeOptions');
  assert.ok(options.includes('tickMs'), `options read: ${options.join(', ')}`);
  assert.deepEqual(unmentioned(doc, options), [], 'KvNode.open options missing from docs/api.md');
});

test('docs/concurrency.md names every public member of the recipes', () => {
  const p = program();
  const doc = readFileSync('docs/concurrency.md', 'utf8');
  for (const cls of ['Session', 'Mutex', 'RWMutex', 'Election', 'Barrier', 'DoubleBarrier', 'Queue', 'PriorityQueue']) {
    const members = publicMembers(p, cls).filter((m) => !['on', 'once', 'off', 'emit', 'addListener', 'removeListener', 'removeAllListeners', 'listeners', 'listenerCount', 'eventNames'].includes(m));
    assert.ok(members.length > 0, `${cls}: no members read`);
    assert.deepEqual(unmentioned(doc, members), [], `${cls} members missing from docs/concurrency.md`);
  }
});

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

interface Example {
  doc: string;
  /** Line of the document where the example's code starts. */
  line: number;
  code: string;
}

/** The TypeScript examples (```ts blocks) of a document. */
function examples(doc: string): Example[] {
  const text = readFileSync(doc, 'utf8');
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => ({ doc, line: text.slice(0, m.index).split('\n').length + 1, code: m[1]! }));
}

/** The documents with TypeScript examples: README.md and docs/*.md. */
function documents(): string[] {
  const docs = ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  return docs.filter((d) => examples(d).length > 0);
}

test('the TypeScript examples of README.md and docs/*.md type-check against the package', () => {
  const docs = documents();
  for (const d of ['README.md', 'docs/api.md', 'docs/concurrency.md', 'docs/testing.md']) assert.ok(docs.includes(d), `${d} has no ts examples`);
  // each example is a module of its own: the imports of its document's
  // examples, then the document's declarations, appended for each name the
  // example does not declare itself (appended, so that its lines keep their
  // numbers; imports and ambient declarations hold anywhere in a module)
  const files = new Map<string, string>();
  const origin = new Map<string, Example>();
  for (const doc of docs) {
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
      files.set(file, `${ex.code}\n${[...extra.map((d) => d.text), ...checks].join('\n')}\nexport {};\n`);
      origin.set(file, ex);
    });
    assert.deepEqual([...restated], [], `${doc} no longer restates these types`);
  }
  const p = program(files);
  const errors = [...files.keys()].flatMap((f) =>
    ts.getPreEmitDiagnostics(p, p.getSourceFile(f)).map((d) => {
      const ex = origin.get(f)!;
      const at = d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
      const lines = files.get(f)!.split('\n');
      // past the example: in what the test added to it
      const where = d.file?.fileName !== f ? `${ex.doc}:${ex.line}` : at < ex.code.split('\n').length - 1 ? `${ex.doc}:${ex.line + at}` : `${ex.doc}:${ex.line} (in \`${lines[at]!.slice(0, 80)}\`)`;
      return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    }),
  );
  assert.deepEqual(errors, []);
});
