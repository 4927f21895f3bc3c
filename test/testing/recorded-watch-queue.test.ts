// A simulation client's watch buffers responses for its iterator only while
// the iterator may still consume them: a consumer of its events alone
// leaves nothing buffered, and an iterator consumer loses nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'eventemitter3';
import type { WatchResponse } from '../../src/mvccpb/index.js';
import type { Watch, WatchEvents } from '../../src/server/index.js';
import { RecordedWatch, type MutableWatchStream } from '../../src/testing/simulation/recorded-watch.js';

class FakeWatch extends EventEmitter<WatchEvents> {
  readonly id = 7;
  cancel(): Promise<void> {
    this.emit('end');
    return Promise.resolve();
  }
  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    throw new Error('not used');
  }
}

function progress(revision: number): WatchResponse {
  return { header: { revision }, watchId: 7, created: false, canceled: false, compactRevision: 0, cancelReason: '', events: [] };
}

function open(): { inner: FakeWatch; w: RecordedWatch } {
  const inner = new FakeWatch();
  const record: MutableWatchStream = { name: 'w', key: 'k', rangeEnd: undefined, startRevision: 0, prevKv: false, filters: undefined, responses: [] };
  return { inner, w: new RecordedWatch(inner as unknown as Watch, record) };
}

const queued = (w: RecordedWatch): number => (w as unknown as { queue: unknown[] }).queue.length;

test('a recorded watch consumed through its listeners alone buffers nothing for its iterator', () => {
  for (const add of ['on', 'once', 'addListener'] as const) {
    const { inner, w } = open();
    inner.emit('response', progress(1)); // before any listener
    let seen = 0;
    w[add]('progress', () => seen++);
    for (let rev = 2; rev <= 1000; rev++) inner.emit('response', progress(rev));
    assert.ok(seen >= 1);
    assert.equal(queued(w), 0, `${add}: ${queued(w)} responses buffered for an iterator nobody uses`);
  }
});

test('an iterator consumer gets every response, those before its first next() included, even with a listener', async () => {
  const { inner, w } = open();
  inner.emit('response', progress(1));
  const it = w[Symbol.asyncIterator]();
  w.on('end', () => undefined); // not a data event
  w.on('response', () => undefined); // both faces: the iterator asked first keeps its responses
  inner.emit('response', progress(2));
  inner.emit('response', progress(3));
  inner.emit('end');
  const revs: number[] = [];
  for (let r = await it.next(); r.done !== true; r = await it.next()) revs.push(r.value.header.revision);
  assert.deepEqual(revs, [1, 2, 3]);
});

test('a watch with only an end listener still buffers for its iterator', async () => {
  const { inner, w } = open();
  w.on('end', () => undefined);
  inner.emit('response', progress(1));
  inner.emit('end');
  const revs: number[] = [];
  for await (const r of w) revs.push(r.header.revision);
  assert.deepEqual(revs, [1]);
});
