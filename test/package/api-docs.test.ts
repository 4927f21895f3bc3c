// The reference documents name the whole public surface they describe:
// docs/api.md names every public member of KvNode and every option of
// KvNode.open; docs/concurrency.md every public member of the recipes'
// classes. An option or method added without its documentation fails here
// (that the documents' examples compile is doc-examples.test.ts's to
// check). Read with the TypeScript compiler API; deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import ts from 'typescript';
import { strictCompilerOptions } from './ts-options.js';

const ROOT = resolve('.');

/** The package's main entry point, read with strict options. */
function program(): ts.Program {
  return ts.createProgram([resolve(ROOT, 'src/index.ts')], strictCompilerOptions());
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
