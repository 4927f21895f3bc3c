// The header of a bare store's watch responses: the revision alone by
// default (events, progress notifications, cancellations), and whatever
// the `watch.responseHeader` option makes of the revision when it is given,
// once per response (not per event), on every path a response is made on
// (live, caught up from history, held by a slow consumer, cancelled). A
// hook that throws leaves that response with the revision alone, its error
// thrown on its own (checked in a process of its own).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResponseHeader, WatchResponse } from '../../src/mvccpb/index.js';
import { runFixture } from '../fixtures/run-fixture.js';
import { b, nextResp, openStore, put, type TestStore } from './helpers.js';

/** Every kind of response a store makes, with the revision each header should carry. */
async function everyKind(t: TestStore): Promise<{ what: string; res: WatchResponse; revision: number }[]> {
  const out: { what: string; res: WatchResponse; revision: number }[] = [];
  await put(t, 'k/0', 'a'); // 2
  const live = t.store.watch({ key: b('k/'), rangeEnd: b('k0') });
  const history = t.store.watch({ key: b('k/'), rangeEnd: b('k0'), startRevision: 1 });
  await t.write({ txn: { success: [1, 2, 3].map((i) => ({ requestPut: { key: b(`k/${i}`), value: b('v') } })) } }); // 3
  out.push({ what: 'event response', res: await nextResp(live), revision: 3 });
  out.push({ what: 'event response from history', res: await nextResp(history), revision: 3 });
  t.store.requestProgress(live);
  out.push({ what: 'progress notification', res: await nextResp(live), revision: 3 });
  out.push({ what: 'empty range cancellation', res: await nextResp(t.store.watch({ key: b('z'), rangeEnd: b('a') })), revision: 3 });
  await put(t, 'k/0', 'b'); // 4
  await t.write({ compaction: { revision: 4 } });
  out.push({ what: 'compaction cancellation', res: await nextResp(t.store.watch({ key: b('k/'), startRevision: 2 })), revision: 4 });
  await nextResp(live); // revision 4
  await t.store.close();
  out.push({ what: 'close cancellation', res: await nextResp(live), revision: 4 });
  return out;
}

test("a bare store's watch response headers carry the revision alone by default", async () => {
  const t = await openStore();
  const all = await everyKind(t);
  assert.equal(all[0]!.res.events.length, 3);
  for (const { what, res, revision } of all) assert.deepEqual(res.header, { revision }, what);
});

test('watch.responseHeader makes the header of every response, once per response, not per event', async () => {
  const calls: number[] = [];
  let term = 7;
  const t = await openStore({
    watch: {
      responseHeader: (revision): ResponseHeader => {
        calls.push(revision);
        return { revision, clusterId: 'c', memberId: 'm', raftTerm: term };
      },
    },
  });
  const all = await everyKind(t);
  assert.equal(all[0]!.res.events.length, 3);
  for (const { what, res, revision } of all) assert.deepEqual(res.header, { revision, clusterId: 'c', memberId: 'm', raftTerm: 7 }, what);
  // one call per response: the three events of the txn share one header.
  // At 3: two event responses, progress, empty range; at 4: two event
  // responses, the compaction cancellation, two close cancellations
  assert.deepEqual(calls, [3, 3, 3, 3, 4, 4, 4, 4, 4]);

  // made when the response is made: a slow consumer's held response, and
  // the catch-up responses after it, carry what the hook said then
  const u = await openStore({ watch: { queueCapacity: 1, responseHeader: (revision) => ({ revision, raftTerm: term }) } });
  const slow = u.store.watch({ key: b('s') });
  await put(u, 's', '1'); // 2, queued (term 7)
  term = 8;
  await put(u, 's', '2'); // 3, held aside (term 8)
  term = 9;
  await put(u, 's', '3'); // 4, read from history when the consumer catches up (term 9)
  const got: ResponseHeader[] = [];
  for (let i = 0; i < 3; i++) got.push((await nextResp(slow)).header);
  assert.deepEqual(got, [
    { revision: 2, raftTerm: 7 },
    { revision: 3, raftTerm: 8 },
    { revision: 4, raftTerm: 9 },
  ]);
  await u.store.close();
});

test('a responseHeader that is not a function is refused with QUORUMKV_INVALID_CONFIG when the store opens', async () => {
  for (const responseHeader of [{}, 'revision', null]) {
    await assert.rejects(openStore({ watch: { responseHeader: responseHeader as never } }), { code: 'QUORUMKV_INVALID_CONFIG' }, String(responseHeader));
  }
});

test('a responseHeader that throws: that response has the revision alone, the error is thrown on its own, and the watch goes on', () => {
  const out = runFixture<{ headers: ResponseHeader[]; thrown: string[]; rejected: string[]; revision: number }>('watch-response-header-throws.mjs');
  assert.deepEqual(out.headers, [{ revision: 2, raftTerm: 1 }, { revision: 3 }, { revision: 4, raftTerm: 1 }]);
  assert.deepEqual(out.thrown, ['header failed at 3']);
  assert.deepEqual(out.rejected, []);
  assert.equal(out.revision, 4, 'every write applied');
});
