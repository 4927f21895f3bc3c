// The tarball `npm pack` makes, as `npm publish` would: the repository
// (less node_modules, dist and .git) is copied to a temporary folder and
// packed there (its prepack builds dist), so the working tree is left as it
// is. What a user installs must hold every file the package's exports name,
// the sources its source and declaration maps point to, and nothing of the
// repository's own (tests, benchmarks, examples, scripts, scratch data), nor
// the output of an earlier build of a source file since removed.
// Then the tarball is installed in a consumer project, as `npm install <tarball>`
// would (its dependencies taken from this repository's node_modules), and
// every import path README.md and docs/*.md show is loaded from it with
// `import` and with `require`, and type-checked from ES modules
// (moduleResolution node16 and bundler), CommonJS (nodenext) and the
// resolution of older projects (node10, which reads no exports map), strict,
// skipLibCheck off; and a consumer file using the API's types is
// type-checked against it under strict on and off (below).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative, resolve, sep } from 'node:path';

const ROOT = resolve('.');
const SKIP = new Set(['node_modules', 'dist', '.git']);
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** Every target path named in an `exports` map. */
function exportTargets(exp: unknown): string[] {
  if (typeof exp === 'string') return [exp];
  if (exp === null || typeof exp !== 'object') return [];
  return Object.values(exp).flatMap(exportTargets);
}

/** The import statements of README.md and docs/*.md that import from the package, and the names each takes. */
function documentedImports(): { line: string; specifier: string; names: string[]; where: string }[] {
  const docs = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const out: { line: string; specifier: string; names: string[]; where: string }[] = [];
  for (const doc of docs) {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    for (const m of text.matchAll(/^import\s+(type\s+)?\{([^}]*)\}\s+from\s+'(quorumkv(?:\/[^']*)?)';?$/gm)) {
      const names = m[1] !== undefined ? [] : m[2]!.split(',').map((n) => n.trim()).filter((n) => n !== '' && !n.startsWith('type '));
      out.push({ line: m[0], specifier: m[3]!, names, where: doc });
    }
  }
  return out;
}

let dir: string;
let copy: string;
let files: Set<string>;
let consumer: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'quorumkv-pack-'));
  copy = join(dir, 'pkg');
  cpSync(ROOT, copy, { recursive: true, filter: (src) => relative(ROOT, src).split(sep).every((part) => !SKIP.has(part)) });
  // what an earlier build left of a source file removed since
  mkdirSync(join(copy, 'dist', 'removed'), { recursive: true });
  writeFileSync(join(copy, 'dist', 'removed', 'module.js'), 'export const removed = 1;\n//# sourceMappingURL=module.js.map\n');
  writeFileSync(join(copy, 'dist', 'removed', 'module.js.map'), JSON.stringify({ version: 3, file: 'module.js', sources: ['../../src/removed/module.ts'], mappings: '' }));
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const res = spawnSync(npm, ['pack', '--json', '--pack-destination', dir], { cwd: copy, encoding: 'utf8' });
  assert.equal(res.status, 0, `npm pack failed:\n${res.stdout}${res.stderr}`);
  // prepack's output comes first on stdout; the JSON report is last
  const report = JSON.parse(res.stdout.slice(res.stdout.lastIndexOf('\n[\n') + 1)) as { filename: string; files: { path: string }[] }[];
  files = new Set(report[0]!.files.map((f) => f.path));

  // a consumer project with the tarball installed
  consumer = join(dir, 'consumer');
  const installed = join(consumer, 'node_modules', 'quorumkv');
  mkdirSync(installed, { recursive: true });
  const untar = spawnSync('tar', ['-xzf', join(dir, report[0]!.filename), '-C', installed, '--strip-components=1'], { encoding: 'utf8' });
  assert.equal(untar.status, 0, `tar failed:\n${untar.stdout}${untar.stderr}`);
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name.startsWith('.') || name === 'quorumkv') continue;
    symlinkSync(join(ROOT, 'node_modules', name), join(consumer, 'node_modules', name), 'dir');
  }
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('the packed tarball holds what the exports and maps name, and nothing of the repository', { timeout: 240_000 }, () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: unknown; main?: string; types?: string };
  for (const target of [...exportTargets(pkg.exports), pkg.main, pkg.types]) {
    if (target === undefined) continue;
    assert.ok(files.has(posix.normalize(target)), `${target} (named by package.json) is not in the tarball`);
  }

  const foreign = [...files].filter((p) => /^(test|bench|examples|scripts|scratch|coverage|\.ci|\.demo-data)\//.test(p) || /\.test\.[cm]?[jt]s$/.test(p));
  assert.deepEqual(foreign, [], 'files of the repository itself are in the tarball');

  // dist holds the build of src as it is: nothing from a source file no longer there
  const orphans = [...files].filter((p) => p.startsWith('dist/') && !files.has(p.replace(/^dist\//, 'src/').replace(/(\.d)?\.js(\.map)?$|\.d\.ts(\.map)?$/, '.ts')));
  assert.deepEqual(orphans, [], 'files of dist that no source in src builds are in the tarball (a build left over)');

  const missing: string[] = [];
  for (const p of files) {
    if (!p.endsWith('.map')) continue;
    const map = JSON.parse(readFileSync(join(copy, p), 'utf8')) as { sources: string[]; sourceRoot?: string; sourcesContent?: unknown[] };
    if (map.sourcesContent !== undefined) continue;
    for (const s of map.sources) {
      const target = posix.normalize(posix.join(posix.dirname(p), map.sourceRoot ?? '', s));
      if (!files.has(target)) missing.push(`${p} -> ${target}`);
    }
  }
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} map sources are not in the tarball (stack traces and "go to definition" would point at files that do not exist)`);
});

test('every import path the documents show loads from the installed tarball, with import and require, and exits once closed', { timeout: 120_000 }, () => {
  const imports = documentedImports();
  const specifiers = [...new Set(imports.map((i) => i.specifier))].sort();
  assert.ok(specifiers.includes('quorumkv') && specifiers.includes('quorumkv/testing'), `documented import paths read: ${specifiers.join(', ')}`);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  for (const s of specifiers) {
    const key = s === 'quorumkv' ? '.' : `.${s.slice('quorumkv'.length)}`;
    assert.ok(key in pkg.exports, `${s} (imported in ${imports.find((i) => i.specifier === s)!.where}) is not in package.json's exports`);
  }
  const expected: Record<string, string[]> = {};
  for (const i of imports) (expected[i.specifier] ??= []).push(...i.names);

  // ES module: every documented name is there; a one-member KvNode opened
  // and closed leaves nothing that keeps the process alive
  writeFileSync(
    join(consumer, 'esm.mjs'),
    `import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const expected = ${JSON.stringify(expected)};
const missing = [];
for (const [specifier, names] of Object.entries(expected)) {
  const mod = await import(specifier);
  for (const n of names) if (mod[n] === undefined) missing.push(specifier + ': ' + n);
}
if (missing.length > 0) throw new Error('missing exports: ' + missing.join(', '));
const { KvNode, MemoryNetwork, text } = await import('quorumkv');
const dir = mkdtempSync(join(tmpdir(), 'quorumkv-consumer-'));
const net = new MemoryNetwork({ seed: 1 });
const node = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), dataDir: dir });
await node.put('k', 'v');
const value = text((await node.get('k'))?.value);
await node.close();
rmSync(dir, { recursive: true, force: true });
console.log('esm ' + value);
`,
  );
  // CommonJS: require() of the same paths (Node 20.19 and later load ES modules with require)
  writeFileSync(
    join(consumer, 'cjs.cjs'),
    `const expected = ${JSON.stringify(expected)};
const missing = [];
for (const [specifier, names] of Object.entries(expected)) {
  const mod = require(specifier);
  for (const n of names) if (mod[n] === undefined) missing.push(specifier + ': ' + n);
}
if (missing.length > 0) throw new Error('missing exports: ' + missing.join(', '));
console.log('cjs ok');
`,
  );
  const esm = spawnSync(process.execPath, ['esm.mjs'], { cwd: consumer, encoding: 'utf8', timeout: 60_000 });
  assert.equal(esm.signal, null, `the ES module consumer did not exit within 60 s (a handle left open):\n${esm.stdout}${esm.stderr}`);
  assert.equal(esm.status, 0, `the ES module consumer failed:\n${esm.stdout}${esm.stderr}`);
  assert.match(esm.stdout, /^esm v$/m);
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  if (major > 22 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19)) {
    const cjs = spawnSync(process.execPath, ['cjs.cjs'], { cwd: consumer, encoding: 'utf8', timeout: 60_000 });
    assert.equal(cjs.status, 0, `the CommonJS consumer failed:\n${cjs.stdout}${cjs.stderr}`);
    assert.match(cjs.stdout, /^cjs ok$/m);
  }
});

test('the documented imports type-check against the installed declarations (node16, bundler, CommonJS nodenext, node10; strict, skipLibCheck off)', { timeout: 240_000 }, () => {
  const imports = documentedImports();
  // one file per documented import line (two lines may import the same name)
  const body = (i: number, line: string, names: string[]): string => `${line}\nexport const used${i} = [${names.join(', ')}];\n`;
  const esmFiles: string[] = [];
  imports.forEach((imp, i) => {
    writeFileSync(join(consumer, `doc${i}.mts`), body(i, imp.line, imp.names));
    writeFileSync(join(consumer, `doc${i}.cts`), body(i, imp.line, imp.names));
    writeFileSync(join(consumer, `doc${i}.ts`), body(i, imp.line, imp.names));
    esmFiles.push(`doc${i}`);
  });
  const configs: Record<string, object> = {
    node16: { module: 'Node16', moduleResolution: 'Node16', files: esmFiles.map((f) => `${f}.mts`) },
    bundler: { module: 'ESNext', moduleResolution: 'Bundler', files: esmFiles.map((f) => `${f}.mts`) },
    'nodenext-cjs': { module: 'NodeNext', moduleResolution: 'NodeNext', files: esmFiles.map((f) => `${f}.cts`) },
    // the resolution of older projects, which reads no exports map: the
    // subpaths' types come from typesVersions
    node10: { module: 'ESNext', moduleResolution: 'Node10', files: esmFiles.map((f) => `${f}.ts`) },
  };
  for (const [name, { files: list, ...options }] of Object.entries(configs) as [string, { files: string[] }][]) {
    const config = join(consumer, `tsconfig.${name}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: { target: 'ES2022', lib: ['ES2022'], strict: true, skipLibCheck: false, noEmit: true, types: ['node'], ...options },
        files: list,
      }),
    );
    const check = spawnSync(process.execPath, [TSC, '-p', config], { encoding: 'utf8', cwd: consumer });
    assert.equal(check.status, 0, `the documented imports fail to type-check (${name}):\n${check.stdout}${check.stderr}`);
  }
});

// The published declarations as a user's project sees them: a consumer file
// importing \`quorumkv\` and \`quorumkv/testing\` from the installed tarball
// is type-checked with \`skipLibCheck: false\` (TypeScript's default), under
// \`strict\` on and off. A declaration that only compiles inside this
// repository (for example an override whose signature does not match its
// base class's) fails here with the consumer's error, and so does a member
// tagged \`@internal\` that the declarations still show.
const CONSUMER = `
import * as q from 'quorumkv';
import * as t from 'quorumkv/testing';
import { MemoryNetwork, KvNode, toBytes, type Event, type KV, type WatchResponse } from 'quorumkv';

export const all = [q, t];

export async function use(dir: string): Promise<string> {
  const net = new MemoryNetwork({ seed: 1 });
  const node: KV = await KvNode.open({ id: 'a', members: ['a'], transport: net.transport('a'), dataDir: dir });
  const w = node.watch('config/', { prefix: true });
  w.on('put', (ev: Event) => void ev.kv.key);
  w.on('response', (r: WatchResponse) => void r.header.revision);
  // @ts-expect-error a listener's arguments are checked against the event's
  w.on('put', (n: number) => void n);
  const raw: q.Watcher | undefined = undefined as q.Watcher | undefined;
  // @ts-expect-error members tagged @internal (the store's bookkeeping) are not published
  if (raw !== undefined) raw.minRev = 0;
  // @ts-expect-error watches come from watch(): the constructor is private
  if (raw === undefined) void new q.Watcher();
  for await (const r of w) if (r.events.length > 0) break;
  await node.put(toBytes('config/a'), 'v');
  return (await node.get('config/a'))?.modRevision.toString() ?? '';
}
`;

test('the published declarations type-check in a consumer project (skipLibCheck off, strict on and off)', { timeout: 240_000 }, () => {
  writeFileSync(join(consumer, 'consumer.mts'), CONSUMER);
  for (const strict of [true, false]) {
    const config = join(consumer, `tsconfig.consumer-${strict}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: { target: 'ES2022', lib: ['ES2022'], module: 'NodeNext', moduleResolution: 'NodeNext', strict, skipLibCheck: false, noEmit: true, types: ['node'] },
        files: ['consumer.mts'],
      }),
    );
    const check = spawnSync(process.execPath, [TSC, '-p', config], { encoding: 'utf8', cwd: consumer });
    assert.equal(check.status, 0, `a consumer with strict: ${strict} fails to type-check:\n${check.stdout}${check.stderr}`);
  }
});
