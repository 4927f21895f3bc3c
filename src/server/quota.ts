/**
 * The backend quota (etcd's `--quota-backend-bytes` and `backendQuota`): a
 * member refuses a request that would grow its store past the quota, and
 * raises a `NOSPACE` alarm for itself, which then stops growth cluster-wide
 * (see `alarms.ts`).
 * @module
 */
import type { WriteRequest } from '../mvcc/index.js';
import type { RequestOp, TxnRequest } from '../mvccpb/index.js';

/** etcd's default quota: 2 GiB. */
export const DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 ** 3;

/** Bytes counted for each put besides its key and value (etcd's `kvOverhead`). */
export const KV_OVERHEAD_BYTES = 256;

/** Bytes counted for a lease grant (etcd's `leaseOverhead`). */
export const LEASE_OVERHEAD_BYTES = 64;

function opCost(op: RequestOp): number {
  if ('requestPut' in op) return op.requestPut.key.length + (op.requestPut.value?.length ?? 0) + KV_OVERHEAD_BYTES;
  if ('requestTxn' in op) return txnCost(op.requestTxn);
  return 0;
}

function txnCost(txn: TxnRequest): number {
  const branch = (ops: RequestOp[] | undefined) => (ops ?? []).reduce((s, op) => s + opCost(op), 0);
  return Math.max(branch(txn.success), branch(txn.failure));
}

/**
 * What a request may add to the store, in bytes (etcd's `backendQuota.Cost`):
 * key + value + {@link KV_OVERHEAD_BYTES} for a put, the costlier branch of a
 * txn, {@link LEASE_OVERHEAD_BYTES} for a lease grant, 0 otherwise.
 */
export function requestCost(req: WriteRequest): number {
  if ('put' in req) return req.put.key.length + (req.put.value?.length ?? 0) + KV_OVERHEAD_BYTES;
  if ('txn' in req) return txnCost(req.txn);
  if ('leaseGrant' in req) return LEASE_OVERHEAD_BYTES;
  return 0;
}
