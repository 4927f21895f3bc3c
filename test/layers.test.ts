// The layer rules of docs/design (DESIGN.md "Layers"): imports only go
// downward, and the Raft core stays pure (no I/O, no clock, no Math.random).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve('src');

/** For each folder of src/, the folders of src/ its files may import. */
const ALLOWED: Record<string, string[]> = {
  raftpb: [],
  mvccpb: [],
  raft: ['raftpb'],
  codec: ['raftpb', 'mvccpb'],
  storage: ['raft', 'raftpb', 'codec'],
  transport: ['raftpb', 'codec'],
  node: ['raft', 'raftpb', 'storage', 'transport', 'codec'],
  mvcc: ['mvccpb', 'codec', 'lease'],
  lease: ['mvccpb', 'codec'],
  server: ['node', 'raft', 'raftpb', 'storage', 'transport', 'codec', 'mvcc', 'mvccpb', 'lease'],
  concurrency: ['mvccpb', 'server/kv'],
  testing: ['*'],
};

/** Packages (not relative paths) each folder may import; `*` = any. */
const ALLOWED_PACKAGES: Record<string, string[] | '*'> = {
  raftpb: [],
  mvccpb: [],
  raft: [],
};

/** Top-level files of src/ every layer may import. */
const SHARED_FILES = new Set(['errors.ts', 'level-write.ts', 'option-keys.ts', 'isolated-emit.ts', 'timer-limit.ts', 'arg-values.ts']);

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function imports(source: string): string[] {
  const specs: string[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;
  for (const m of source.matchAll(re)) specs.push((m[1] ?? m[2] ?? m[3])!);
  return specs;
}

function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

function layerOf(file: string): string | undefined {
  const rel = relative(SRC, file);
  const parts = rel.split('/');
  return parts.length > 1 ? parts[0] : undefined;
}

export function layerViolations(): string[] {
  const problems: string[] = [];
  for (const file of walk(SRC)) {
    const layer = layerOf(file);
    if (layer === undefined) continue; // src/index.ts and shared files may import anything
    const allowed = ALLOWED[layer];
    const source = readFileSync(file, 'utf8');
    const rel = relative(SRC, file);
    if (allowed === undefined) {
      problems.push(`${rel}: folder src/${layer} has no entry in the layer table`);
      continue;
    }
    for (const spec of imports(source)) {
      if (spec.startsWith('.')) {
        const target = relative(SRC, resolve(dirname(file), spec));
        if (target.startsWith('..')) {
          problems.push(`${rel}: imports ${spec}, outside src/`);
          continue;
        }
        const targetParts = target.split('/');
        if (targetParts.length === 1) {
          if (!SHARED_FILES.has(targetParts[0]!.replace(/\.js$/, '.ts'))) {
            problems.push(`${rel}: imports ${spec}, a top-level file only the entry points may import`);
          }
          continue;
        }
        const targetLayer = targetParts[0]!;
        if (targetLayer === layer || allowed.includes('*')) continue;
        const targetPath = targetParts.join('/').replace(/\.js$/, '');
        const ok = allowed.some((a) => a === targetLayer || targetPath === a);
        if (!ok) problems.push(`${rel}: imports ${spec} (src/${targetLayer}), not below src/${layer}`);
      } else {
        const pkgs = ALLOWED_PACKAGES[layer];
        if (pkgs !== undefined && pkgs !== '*' && !pkgs.includes(spec)) {
          problems.push(`${rel}: imports package ${spec}; src/${layer} must stay free of I/O and dependencies`);
        }
      }
    }
    if (layer === 'raft' || layer === 'raftpb') {
      const code = stripComments(source);
      for (const banned of ['Math.random', 'Date.now', 'setTimeout', 'setInterval', 'setImmediate', 'performance.now', 'process.', 'new Promise', 'async ']) {
        if (code.includes(banned)) problems.push(`${rel}: uses ${banned.trim()}; the Raft core is pure and deterministic`);
      }
    }
  }
  return problems;
}

test('every import in src/ goes down the layer table and the Raft core stays pure', () => {
  assert.deepEqual(layerViolations(), []);
});

test('the layer check notices an upward import (self-test on the table)', () => {
  // raft may not import transport, and transport may not import node.
  assert.equal(ALLOWED.raft!.includes('transport'), false);
  assert.equal(ALLOWED.transport!.includes('node'), false);
  const src = "import { x } from '../node/raft-node.js';\nimport y from 'msgpackr';";
  assert.deepEqual(imports(src), ['../node/raft-node.js', 'msgpackr']);
});
