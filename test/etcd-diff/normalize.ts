// Normalized, comparable forms of the key-value API answers (shared by every
// DiffTarget: each converts its answers to the mvccpb types first).
import type {
  DeleteRangeResponse,
  Event,
  PutResponse,
  RangeResponse,
  ResponseOp,
  TxnResponse,
} from '../../src/mvccpb/index.js';
import { normKv, type NEvent, type ResponseMapping } from './diff-target.js';

export function normRange(m: ResponseMapping, r: RangeResponse): Record<string, unknown> {
  return { rev: m.rev(r.header.revision), kvs: r.kvs.map((kv) => normKv(m, kv)), more: r.more, count: r.count };
}

export function normPut(m: ResponseMapping, r: PutResponse): Record<string, unknown> {
  const out: Record<string, unknown> = { rev: m.rev(r.header.revision) };
  if (r.prevKv !== undefined) out.prev = normKv(m, r.prevKv);
  return out;
}

export function normDelete(m: ResponseMapping, r: DeleteRangeResponse): Record<string, unknown> {
  return { rev: m.rev(r.header.revision), deleted: r.deleted, prevKvs: r.prevKvs.map((kv) => normKv(m, kv)) };
}

function normOp(m: ResponseMapping, op: ResponseOp): Record<string, unknown> {
  if ('responseRange' in op) return { range: normRange(m, op.responseRange) };
  if ('responsePut' in op) return { put: normPut(m, op.responsePut) };
  if ('responseDeleteRange' in op) return { del: normDelete(m, op.responseDeleteRange) };
  return { txn: normTxn(m, op.responseTxn) };
}

export function normTxn(m: ResponseMapping, r: TxnResponse): Record<string, unknown> {
  return { rev: m.rev(r.header.revision), succeeded: r.succeeded, responses: r.responses.map((op) => normOp(m, op)) };
}

export function normEvent(m: ResponseMapping, e: Event): NEvent {
  const out: NEvent = { type: e.type, kv: normKv(m, e.kv) };
  if (e.prevKv !== undefined) out.prev = normKv(m, e.prevKv);
  return out;
}
