// The error codes the documents speak of are the package's: every
// `QUORUMKV_*` name in README.md, docs/*.md and the sources' comments is an
// `ErrorCode` (src/errors.ts) or an environment variable that a test, script
// or example reads; docs/api.md's "Error codes" table lists every
// `ErrorCode` once; and the codes it says are not thrown are exactly those
// no source names but src/errors.ts (so a code that comes into use, or
// falls out of it, changes the table). Read with the TypeScript compiler
// API; deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { ErrorCode } from '../../src/errors.js';
import { allDocuments } from './doc-fences.js';

const CODES = new Set<string>(Object.values(ErrorCode));

/** The `.ts`, `.mts` and `.mjs` files under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : sources(p);
    return /\.(ts|mts|mjs)$/.test(name) ? [p] : [];
  });
}

/** The QUORUMKV_* environment variables read (`env.NAME`, `env['NAME']`) in the repository's code. */
function environmentVariables(): Set<string> {
  const names = new Set<string>();
  for (const f of ['src', 'test', 'scripts', 'examples', 'bench'].flatMap(sources)) {
    for (const m of readFileSync(f, 'utf8').matchAll(/\benv(?:\.(QUORUMKV_\w+)|\[\s*['"](QUORUMKV_\w+)['"]\s*\])/g)) names.add(m[1] ?? m[2]!);
  }
  return names;
}

/** Each `QUORUMKV_*` name in `text`, with its line. */
function mentions(text: string): { name: string; line: number }[] {
  return [...text.matchAll(/\bQUORUMKV_[A-Z0-9_]*[A-Z0-9]/g)].map((m) => ({ name: m[0], line: text.slice(0, m.index).split('\n').length }));
}

/** The codes a source file names in its code (`ErrorCode.X`, `'QUORUMKV_X'`), its comments left out. */
function codesNamed(file: string): Set<string> {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const named = new Set<string>();
  const visit = (n: ts.Node): void => {
    if (ts.isPropertyAccessExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'ErrorCode' && n.name.text in ErrorCode) {
      named.add(ErrorCode[n.name.text as keyof typeof ErrorCode]);
    }
    if ((ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) && CODES.has(n.text)) named.add(n.text);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return named;
}

/** The rows of docs/api.md's "Error codes" table: the codes of each row and its text. */
function errorTable(): { codes: string[]; text: string }[] {
  const doc = readFileSync('docs/api.md', 'utf8');
  const at = doc.indexOf('\n## Error codes\n');
  assert.ok(at >= 0, 'docs/api.md has no "## Error codes" section');
  const section = doc.slice(at + 1).split(/\n## /)[0]!;
  const rows = section.split('\n').filter((l) => l.startsWith('| `QUORUMKV_'));
  return rows.map((row) => {
    const first = row.split('|')[1]!;
    return { codes: [...first.matchAll(/`(QUORUMKV_\w+)`/g)].map((m) => m[1]!), text: row };
  });
}

test('every QUORUMKV_* name in the documents and the sources is an error code, or an environment variable the code reads', () => {
  const env = environmentVariables();
  assert.ok(env.has('QUORUMKV_SEED') && env.size > 10, `environment variables read: ${[...env].join(', ')}`);
  for (const name of env) assert.ok(!CODES.has(name), `${name} is both an error code and an environment variable`);
  const unknown: string[] = [];
  let seen = 0;
  for (const f of [...allDocuments(), ...sources('src')]) {
    for (const { name, line } of mentions(readFileSync(f, 'utf8'))) {
      seen++;
      if (!CODES.has(name) && !env.has(name)) unknown.push(`${f}:${line}: ${name}`);
    }
  }
  assert.ok(seen > 300, `only ${seen} QUORUMKV_* names read`);
  assert.deepEqual(unknown, [], 'names that are neither an ErrorCode (src/errors.ts) nor an environment variable read by the code');
});

test("docs/api.md's error-code table lists every ErrorCode once, and nothing else", () => {
  const listed = errorTable().flatMap((r) => r.codes);
  assert.ok(listed.length > 0);
  const twice = listed.filter((c, i) => listed.indexOf(c) !== i);
  assert.deepEqual(twice, [], 'codes listed twice');
  assert.deepEqual(listed.filter((c) => !CODES.has(c)), [], 'listed codes that src/errors.ts does not have');
  assert.deepEqual([...CODES].filter((c) => !listed.includes(c)), [], 'codes of src/errors.ts missing from docs/api.md "Error codes"');
});

test('the codes docs/api.md says are not thrown are those no source names but src/errors.ts', () => {
  const named = new Set(sources('src').filter((f) => f !== join('src', 'errors.ts')).flatMap((f) => [...codesNamed(f)]));
  assert.ok(named.has(ErrorCode.INVALID_ARGUMENT) && named.has(ErrorCode.BARRIER_FULL), `codes named: ${[...named].join(', ')}`);
  const unused = [...CODES].filter((c) => !named.has(c)).sort();
  const saidUnused = errorTable()
    .filter((r) => /not thrown by this version/.test(r.text))
    .flatMap((r) => r.codes)
    .sort();
  assert.deepEqual(saidUnused, unused, 'docs/api.md: the codes said "not thrown by this version" are not the ones no source throws');
  // and src/errors.ts says so too
  const errors = readFileSync('src/errors.ts', 'utf8');
  for (const c of unused) {
    const key = Object.entries(ErrorCode).find(([, v]) => v === c)![0];
    const doc = new RegExp(`/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*${key}:`).exec(errors);
    assert.ok(doc !== null && /Not thrown by this version/.test(doc[1]!), `src/errors.ts: the TSDoc of ${key} does not say it is not thrown`);
  }
});
