// FileLogStorage: the search, after a bad record in the last segment, for a
// record after it. A record found there means the damage is in the middle
// of the log (refused, QUORUMKV_CORRUPT_LOG); none means a torn write at the
// end (dropped). Every kind of record the log writes, in every encoding its
// saves can give it (sizes of arrays, strings, binary data and integers),
// at any offset (across a sector, across the 64 KiB the open reads at a
// time, the first record of a segment), must be found there: a record that
// is not would make the open take damage in the middle of synced records
// for a torn tail, and drop them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode } from '../../src/errors.js';
import type { Entry, HardState, Snapshot } from '../../src/raftpb/index.js';
import { FileLogStorage } from '../../src/storage/index.js';
import type { LogStorageUpdate } from '../../src/storage/log-storage.js';
import { ent, ents, rejectsWith } from './conformance.js';
import { records, withTempDir } from './fixtures.js';

const SECTOR = 512;
const SEG = 1024 * 1024;
const HS = (term: number, vote: string, commit: number): HardState => ({ term, vote, commit });
const open = (dir: string, segmentBytes = SEG) => FileLogStorage.open({ dir, segmentBytes });

async function lastSegment(dir: string): Promise<string> {
  const names = (await readdir(join(dir, 'wal'))).filter((n) => n.endsWith('.wal')).sort();
  return join(dir, 'wal', names.at(-1)!);
}

function snapshot(index: number, term: number, voters: string[], learners: string[] = []): Snapshot {
  return { metadata: { index, term, confState: { voters, learners } }, data: Uint8Array.of(7, index & 0xff) };
}

function entry(index: number, term: number, size: number, type: Entry['type'] = 'Normal'): Entry {
  const e = ent(index, term, size);
  // no zero byte in the data: an aligned sector of zeros is what a lost one looks like
  for (let i = 0; i < e.data.length; i++) if (e.data[i] === 0) e.data[i] = 0x5a;
  return { ...e, type };
}

interface Save {
  update: LogStorageUpdate;
  sync: boolean;
}

/**
 * Records that may follow the damaged one: each kind of save, in the
 * encodings it can take. The log before them holds entries 1..4 of term 1,
 * commit 3, and a HardState of term 1.
 */
const FOLLOWERS: Array<{ name: string; update: LogStorageUpdate }> = [
  { name: 'one small entry', update: { entries: [entry(5, 1, 10)] } },
  { name: 'a HardState alone', update: { hardState: HS(1, 'a', 4) } },
  { name: 'a HardState whose vote is a str8 (40 bytes)', update: { hardState: HS(2, 'v'.repeat(40), 4) } },
  { name: 'a HardState whose vote is a str16 (300 bytes)', update: { hardState: HS(2, 'w'.repeat(300), 4) } },
  { name: 'a HardState with an empty vote and commit 0', update: { hardState: HS(1, '', 0) } },
  { name: 'a ConfChange entry', update: { entries: [entry(5, 1, 30, 'ConfChange')] } },
  { name: 'an entry with empty data', update: { entries: [{ index: 5, term: 1, type: 'Normal', data: new Uint8Array(0) }] } },
  { name: '20 entries (array16)', update: { entries: ents(5, 24, 1).map((e) => entry(e.index, 1, 5)) } },
  { name: 'an entry of 300 bytes (bin16)', update: { entries: [entry(5, 1, 300)] } },
  { name: 'an entry of 70,000 bytes (bin32, more than the 64 KiB read at a time)', update: { entries: [entry(5, 1, 70_000)] } },
  { name: 'entries, a HardState and a new term', update: { hardState: HS(2, 'b', 5), entries: [entry(5, 2, 50), entry(6, 2, 50)] } },
  { name: 'a term above 2^32 (float64) and indexes of each width', update: { hardState: HS(2 ** 32 + 3, 'c', 4), entries: [entry(5, 2 ** 32 + 1, 20)] } },
  { name: 'a snapshot that keeps the entries above it', update: { snapshot: snapshot(3, 1, ['a', 'b', 'c']) } },
  { name: 'a snapshot past the last entry, with a HardState', update: { hardState: HS(2, 'a', 10), snapshot: snapshot(10, 2, ['a'], ['l']) } },
  { name: 'a snapshot, a HardState and entries after it', update: { hardState: HS(2, 'a', 12), snapshot: snapshot(10, 2, ['a', 'b']), entries: [entry(11, 2, 40), entry(12, 2, 40)] } },
  { name: 'a snapshot at index 2^33 (float64)', update: { hardState: HS(2 ** 32 + 9, 'a', 2 ** 33), snapshot: snapshot(2 ** 33, 2 ** 32 + 7, ['a']) } },
  { name: 'a snapshot of 20 voters and 17 learners (array16)', update: { snapshot: snapshot(4, 1, Array.from({ length: 20 }, (_, i) => `n${i}`), Array.from({ length: 17 }, (_, i) => `l${i}`)) } },
  { name: 'an entry at index 300 after a snapshot (uint16 indexes)', update: { snapshot: snapshot(299, 1, ['a']), entries: [entry(300, 1, 20)] } },
  { name: 'an entry at index 70,000 after a snapshot (uint32 indexes)', update: { hardState: HS(300, 'a', 70_000), snapshot: snapshot(69_999, 1, ['a']), entries: [entry(70_000, 300, 20)] } },
];

const PREFIX: Save[] = [{ update: { hardState: HS(1, 'a', 1), entries: ents(1, 3, 1).map((e) => entry(e.index, 1, 8)) }, sync: true }];
/** The record damaged: a synced save over several sectors. */
const damaged = (size = 1500, sync = true): Save => ({ update: { hardState: HS(1, 'a', 3), entries: [entry(4, 1, size)] }, sync });

/** Removes the log's files (the directory is reused for the next case). */
async function rmLog(dir: string): Promise<void> {
  await rm(join(dir, 'wal'), { recursive: true, force: true });
  await rm(join(dir, 'snap'), { recursive: true, force: true });
}

/** Writes the saves in a fresh log; returns the last segment's path, its records and its bytes. */
async function build(dir: string, saves: Save[]): Promise<{ path: string; recs: Array<{ off: number; len: number }>; image: Buffer }> {
  const s = await open(dir);
  for (const { update, sync } of saves) await s.save(update, { sync });
  await s.close();
  const path = await lastSegment(dir);
  return { path, recs: await records(path), image: await readFile(path) };
}

/** Damage done to the record at `r`: what a crash does not do to a synced record. */
const DAMAGE: Array<{ name: string; apply: (image: Buffer, r: { off: number; len: number }) => void; inPlace: boolean }> = [
  { name: 'a flipped byte of its payload', inPlace: true, apply: (b, r) => void (b[r.off + Math.floor(r.len / 2)] ^= 0x10) },
  { name: 'a flipped byte of its CRC', inPlace: true, apply: (b, r) => void (b[r.off + 5] ^= 0x01) },
  { name: 'a length that ends inside the next record', inPlace: true, apply: (b, r) => b.writeUInt32LE(b.readUInt32LE(r.off) + 20, r.off) },
  { name: 'a length that runs past the end of the records', inPlace: true, apply: (b, r) => b.writeUInt32LE(b.readUInt32LE(r.off) + 200_000, r.off) },
  { name: 'a length shortened', inPlace: true, apply: (b, r) => b.writeUInt32LE(b.readUInt32LE(r.off) - 3, r.off) },
  {
    name: 'a whole sector zeroed',
    inPlace: false,
    apply: (b, r) => {
      const s = Math.ceil((r.off + 8) / SECTOR) * SECTOR;
      assert.ok(s + SECTOR <= r.off + r.len, 'the record spans a whole sector');
      b.fill(0, s, s + SECTOR);
    },
  },
  { name: 'its header zeroed', inPlace: false, apply: (b, r) => b.fill(0, r.off, r.off + 8) },
];

async function refused(dir: string, path: string, image: Buffer, why: string): Promise<void> {
  await writeFile(path, image);
  await rejectsWith(open(dir), ErrorCode.CORRUPT_LOG);
  assert.deepEqual(await readFile(path), image, `nothing was zeroed (${why})`);
}

for (const follower of FOLLOWERS) {
  test(`a synced record damaged in the middle of the log, followed by ${follower.name}: QUORUMKV_CORRUPT_LOG, the file left as it was`, () =>
    withTempDir(async (dir) => {
      for (const sync of [true, false]) {
        // the follower alone after the damaged record: it must be found
        // there (damage in place, no sector lost: not a torn write)
        {
          const { path, recs, image } = await build(dir, [...PREFIX, damaged(), { update: follower.update, sync }]);
          const d = recs.at(-2)!;
          for (const damage of DAMAGE.filter((x) => x.inPlace)) {
            const bad = Buffer.from(image);
            damage.apply(bad, d);
            await refused(dir, path, bad, `${damage.name}, then the follower ${sync ? 'synced' : 'unsynced'}`);
          }
          await writeFile(path, image);
          const s = await open(dir);
          await s.load(); // the undamaged log loads
          await s.close();
          await rmLog(dir);
        }
        // a lost sector or header, then the follower and a record with a
        // synced one among them: a durable record, which must be found
        const shapes: Save[][] = [
          [{ update: follower.update, sync: true }, { update: { hardState: HS(2 ** 33, 'z', 0) }, sync }],
          [{ update: { hardState: HS(1, 'a', 2) }, sync: true }, { update: follower.update, sync }],
        ];
        for (const after of shapes) {
          const { path, recs, image } = await build(dir, [...PREFIX, damaged(), ...after]);
          const d = recs.at(-3)!;
          for (const damage of DAMAGE) {
            const bad = Buffer.from(image);
            damage.apply(bad, d);
            await refused(dir, path, bad, `${damage.name}, then a durable record`);
          }
          await rmLog(dir);
        }
      }
    }));
}

test('a record after the damaged one that straddles a sector, or the 64 KiB the open reads at a time, or begins on either, is found: QUORUMKV_CORRUPT_LOG', () =>
  withTempDir(async (dir) => {
    const follower: Save = { update: { hardState: HS(1, 'a', 4), entries: [entry(5, 1, 700)] }, sync: true };
    // where the follower begins with a damaged record of 1500 bytes of data
    const probe = await build(dir, [...PREFIX, damaged(), follower]);
    const base = probe.recs.at(-1)!.off;
    await rmLog(dir);
    const targets = [SECTOR * 4, SECTOR * 4 - 1, SECTOR * 4 - 5, SECTOR * 4 - 9, SECTOR * 4 - 10, 65536, 65536 - 1, 65536 - 4, 65536 - 8, 65536 - 9, 65536 - 200];
    for (const at of targets) {
      // the data of the damaged entry stays a bin16 (256..65535 bytes)
      const size = 1500 + at - base;
      assert.ok(size >= 256 && size <= 65535, `size ${size}`);
      const { path, recs, image } = await build(dir, [...PREFIX, damaged(size), follower]);
      assert.equal(recs.at(-1)!.off, at, 'the follower begins where wanted');
      const bad = Buffer.from(image);
      bad[recs.at(-2)!.off + 100] ^= 0x01;
      await refused(dir, path, bad, `follower at ${at}`);
      await rmLog(dir);
    }
  }));

test('the first record of the last segment (its state record) or the save after it damaged, with a record after it: QUORUMKV_CORRUPT_LOG', () =>
  withTempDir(async (dir) => {
    const SMALL = 64 * 1024;
    let s = await FileLogStorage.open({ dir, segmentBytes: SMALL });
    let i = 1;
    while ((await readdir(join(dir, 'wal'))).filter((n) => n.endsWith('.wal')).length < 2) {
      await s.save({ hardState: HS(1, 'a', i + 9), entries: ents(i, i + 9, 1).map((e) => entry(e.index, 1, 300)) }, { sync: true });
      i += 10;
    }
    await s.save({ hardState: HS(1, 'a', i + 9), entries: ents(i, i + 9, 1).map((e) => entry(e.index, 1, 300)) }, { sync: false });
    await s.close();
    const path = await lastSegment(dir);
    const recs = await records(path);
    assert.ok(recs.length >= 3, 'a state record, the save written with it, and a later one');
    const image = await readFile(path);
    for (const which of [0, 1]) {
      const bad = Buffer.from(image);
      bad[recs[which]!.off + recs[which]!.len - 2] ^= 0x04;
      await writeFile(path, bad);
      await rejectsWith(FileLogStorage.open({ dir, segmentBytes: SMALL }), ErrorCode.CORRUPT_LOG, 'not a torn write');
      assert.deepEqual(await readFile(path), bad);
    }
    await writeFile(path, image);
    s = await FileLogStorage.open({ dir, segmentBytes: SMALL });
    assert.equal((await s.load()).entries.at(-1)!.index, i + 9, 'the undamaged log loads');
    await s.close();
  }));

for (const follower of FOLLOWERS) {
  test(`a torn write followed by ${follower.name} (its synced save in flight at the crash) is dropped with it`, () =>
    withTempDir(async (dir) => {
      for (const tear of ['a lost sector', 'its tail'] as const) {
        // an unsynced save, one of whose sectors a crash lost, then the
        // follower, synced, the last write (no durable record after it)
        const { path, recs, image } = await build(dir, [...PREFIX, damaged(1500, false), { update: follower.update, sync: true }]);
        const d = recs.at(-2)!;
        const bad = Buffer.from(image);
        if (tear === 'a lost sector') DAMAGE.find((x) => x.name === 'a whole sector zeroed')!.apply(bad, d);
        else bad.fill(0, d.off + Math.floor(d.len / 2)); // the torn save is the last write: everything after it is lost
        await writeFile(path, bad);
        const s = await open(dir);
        const loaded = await s.load();
        assert.deepEqual(loaded.entries.map((e) => e.index), [1, 2, 3], `${tear}: the log as before the torn save`);
        assert.deepEqual(loaded.hardState, HS(1, 'a', 1));
        assert.equal(loaded.snapshot, undefined);
        await s.save({ hardState: HS(5, 'b', 4), entries: [entry(4, 5, 20)] }, { sync: true });
        await s.close();
        const again = await open(dir);
        assert.deepEqual((await again.load()).entries.map((e) => [e.index, e.term]), [[1, 1], [2, 1], [3, 1], [4, 5]], `${tear}: the log goes on from the last whole record`);
        await again.close();
        const zeroedFrom = (await readFile(path)).subarray(d.off + d.len + 40);
        assert.ok(zeroedFrom.every((b) => b === 0), `${tear}: the follower is zeroed`);
        await rmLog(dir);
      }
    }));
}

test('a synced save whose entry data holds sectors of zeros, damaged in place, with a save after it: QUORUMKV_CORRUPT_LOG, not a torn write', () =>
  // An aligned sector of zeros inside a bad record is what a crash leaves of
  // an unsynced save that lost a sector while the saves after it reached the
  // disk. A synced save with a save after it returned before that one was
  // written: it never lost a sector in a crash, and its zeros are its data.
  // Its own record says it was synced; dropping it would lose acknowledged
  // entries (and the unsynced HardState after it, a common pair: Raft syncs
  // appended entries and not a commit index alone).
  withTempDir(async (dir) => {
    const zeros: Entry = { index: 4, term: 1, type: 'Normal', data: new Uint8Array(3000) };
    const cases: Array<{ name: string; after: Save; damage: (b: Buffer, r: { off: number; len: number }) => void }> = [
      { name: 'a flipped CRC byte, an unsynced HardState after it', after: { update: { hardState: HS(1, 'a', 4) }, sync: false }, damage: (b, r) => void (b[r.off + 5] ^= 0x01) },
      { name: 'a flipped CRC byte, a synced save after it (the last write)', after: { update: { entries: [entry(5, 1, 20)] }, sync: true }, damage: (b, r) => void (b[r.off + 5] ^= 0x01) },
      { name: 'a flipped data byte, an unsynced HardState after it', after: { update: { hardState: HS(1, 'a', 4) }, sync: false }, damage: (b, r) => void (b[r.off + 40] ^= 0x01) },
      { name: 'its length zeroed, an unsynced HardState after it', after: { update: { hardState: HS(1, 'a', 4) }, sync: false }, damage: (b, r) => b.fill(0, r.off, r.off + 4) },
    ];
    for (const c of cases) {
      const { path, recs, image } = await build(dir, [...PREFIX, { update: { hardState: HS(1, 'a', 3), entries: [zeros] }, sync: true }, c.after]);
      const bad = Buffer.from(image);
      c.damage(bad, recs.at(-2)!);
      await refused(dir, path, bad, c.name);
      await rmLog(dir);
    }
    // the same save unsynced, a sector lost, a save after it: a torn write,
    // dropped (nothing tells its zeros from a lost sector)
    const { path, recs, image } = await build(dir, [...PREFIX, { update: { hardState: HS(1, 'a', 3), entries: [zeros] }, sync: false }, { update: { hardState: HS(1, 'a', 4) }, sync: true }]);
    const bad = Buffer.from(image);
    const d = recs.at(-2)!;
    bad.fill(0, d.off + d.len - 300, d.off + d.len);
    await writeFile(path, bad);
    const s = await open(dir);
    assert.deepEqual((await s.load()).entries.map((e) => e.index), [1, 2, 3]);
    await s.close();
  }));
