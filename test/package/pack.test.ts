// The tarball `npm pack` makes, as `npm publish` would: the repository
// (less node_modules, dist and .git) is copied to a temporary folder and
// packed there (its prepack builds dist), so the working tree is left as it
// is. What a user installs must hold every file the package's exports name,
// the sources its source and declaration maps point to, and nothing of the
// repository's own (tests, benchmarks, examples, scripts, scratch data).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative, resolve, sep } from 'node:path';

const ROOT = resolve('.');
const SKIP = new Set(['node_modules', 'dist', '.git']);

/** Every target path named in an `exports` map. */
function exportTargets(exp: unknown): string[] {
  if (typeof exp === 'string') return [exp];
  if (exp === null || typeof exp !== 'object') return [];
  return Object.values(exp).flatMap(exportTargets);
}

test('the packed tarball holds what the exports and maps name, and nothing of the repository', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-pack-'));
  try {
    const copy = join(dir, 'pkg');
    cpSync(ROOT, copy, { recursive: true, filter: (src) => relative(ROOT, src).split(sep).every((part) => !SKIP.has(part)) });
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const res = spawnSync(npm, ['pack', '--dry-run', '--json'], { cwd: copy, encoding: 'utf8' });
    assert.equal(res.status, 0, `npm pack failed:\n${res.stdout}${res.stderr}`);
    // prepack's output comes first on stdout; the JSON report is last
    const report = JSON.parse(res.stdout.slice(res.stdout.lastIndexOf('\n[\n') + 1)) as { files: { path: string }[] }[];
    const files = new Set(report[0]!.files.map((f) => f.path));

    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: unknown; main?: string; types?: string };
    for (const target of [...exportTargets(pkg.exports), pkg.main, pkg.types]) {
      if (target === undefined) continue;
      assert.ok(files.has(posix.normalize(target)), `${target} (named by package.json) is not in the tarball`);
    }

    const foreign = [...files].filter((p) => /^(test|bench|examples|scripts|scratch|coverage|\.ci|\.demo-data)\//.test(p) || /\.test\.[cm]?[jt]s$/.test(p));
    assert.deepEqual(foreign, [], 'files of the repository itself are in the tarball');

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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
