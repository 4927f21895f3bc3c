// Regression test: the kvnode-3 target of the differential test answers a
// txn of serializable ranges alone (which etcd and KvNode serve from the
// member: isTxnSerializable) and a txn of no operation (which KvNode serves
// as a linearizable read, and etcd 3.4 from the member) at the revision of
// the last acknowledged write, as the single etcd member it is compared
// with does. Both went through the log before KvNode served read-only txns
// as reads; then the lagging follower answered an empty txn at the revision
// it had applied, one behind etcd (ETCD_DIFF_SEED=1230306094
// ETCD_DIFF_SEQ=7 ETCD_DIFF_TARGETS=store,kvnode-3: an empty txn after a
// put, rev 64 instead of 65). Needs no etcd binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvNodeTarget } from './kvnode-target.js';

test('kvnode-3: a txn of no operation, or of serializable ranges, answers at the last acknowledged revision on every member', async (t) => {
  // replay: QUORUMKV_SEED=<seed>
  const seed = process.env.QUORUMKV_SEED !== undefined ? Number(process.env.QUORUMKV_SEED) : Date.now() % 2 ** 31;
  t.diagnostic(`seed ${seed}`);
  const target = new KvNodeTarget('kvnode-3');
  await target.begin(0, seed);
  try {
    const enc = new TextEncoder();
    for (let i = 0; i < 60; i++) {
      await target.next();
      const put = await target.put({ key: enc.encode(`k${i % 3}`), value: enc.encode(`v${i}`) });
      assert.ok('ok' in put, `seed ${seed}: put ${i}: ${JSON.stringify(put)}`);
      const rev = put.ok.rev;
      for (const req of [{}, { success: [{ requestRange: { key: enc.encode('k0'), serializable: true } }] }]) {
        const where = await target.next();
        const out = await target.txn(req);
        assert.ok('ok' in out, `seed ${seed}: txn ${i}: ${JSON.stringify(out)}`);
        assert.equal(out.ok.rev, rev, `seed ${seed}: txn ${JSON.stringify(req)} on ${where} after the put at ${rev} [members: ${target.describe()}]`);
      }
    }
  } finally {
    await target.end();
  }
});
