// The published type declarations, as a user's project sees them: the
// declarations of src/ are emitted to a temporary folder, and a consumer
// file importing `quorumkv` and `quorumkv/testing` is type-checked against
// them with `skipLibCheck: false` (TypeScript's default), under `strict`
// on and off. A declaration that only compiles inside this repository (for
// example an override whose signature does not match its base class's)
// fails here with the consumer's error, and so does a member tagged
// `@internal` that the declarations still show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve('.');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

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
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-decl-'));
  try {
    const decl = join(dir, 'decl');
    const emit = spawnSync(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json'), '--emitDeclarationOnly', '--declarationMap', 'false', '--sourceMap', 'false', '--outDir', decl], {
      encoding: 'utf8',
    });
    assert.equal(emit.status, 0, `emitting the declarations failed:\n${emit.stdout}${emit.stderr}`);
    // the declarations' own imports (eventemitter3, abstract-level, node's
    // types) resolve through the repository's installed packages
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeFileSync(join(dir, 'consumer.mts'), CONSUMER);
    for (const strict of [true, false]) {
      const config = join(dir, `tsconfig.${strict}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            lib: ['ES2022'],
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict,
            skipLibCheck: false,
            noEmit: true,
            types: ['node'],
            paths: { quorumkv: ['./decl/index.d.ts'], 'quorumkv/testing': ['./decl/testing/index.d.ts'] },
          },
          files: ['consumer.mts'],
        }),
      );
      const check = spawnSync(process.execPath, [TSC, '-p', config], { encoding: 'utf8', cwd: dir });
      assert.equal(check.status, 0, `a consumer with strict: ${strict} fails to type-check:\n${check.stdout}${check.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
