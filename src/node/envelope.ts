/**
 * The envelopes of the node layer. Each proposal is wrapped so that the
 * member that proposed it can match the committed entry to the waiting
 * caller: `[0x01][u8 origin length][origin utf-8][f64 sequence][payload]`
 * (an empty entry is a leader's no-op and carries no envelope). Each
 * snapshot's data is wrapped so that it also carries the members' addresses
 * ({@link SnapshotEnvelope}).
 * @module
 */
import { pack, unpack, unpackWithMaps } from '../codec/index.js';
import { ErrorCode, FaultError } from '../errors.js';

const VERSION = 0x01;
const encoder = new TextEncoder();

/** Pre-encodes a node id for {@link wrapProposal}; ids are at most 255 UTF-8 bytes. */
export function encodeOrigin(id: string): Uint8Array {
  return encoder.encode(id);
}

/** Wraps `payload` proposed by `origin` with sequence number `seq`. */
export function wrapProposal(origin: Uint8Array, seq: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + origin.length + 8 + payload.length);
  out[0] = VERSION;
  out[1] = origin.length;
  out.set(origin, 2);
  new DataView(out.buffer).setFloat64(2 + origin.length, seq);
  out.set(payload, 2 + origin.length + 8);
  return out;
}

/**
 * What the member whose encoded id is `origin` ({@link encodeOrigin}) needs
 * of an entry's data: the payload (a view into `data`) and, when it proposed
 * the entry, the proposal's sequence number (else 0).
 * @throws FaultError `QUORUMKV_CORRUPT_LOG` when the envelope is malformed
 */
export function unwrapProposalFor(data: Uint8Array, origin: Uint8Array): { seq: number; payload: Uint8Array } {
  if (data.length < 10 || data[0] !== VERSION) {
    throw new FaultError(ErrorCode.CORRUPT_LOG, 'entry data is not a proposal envelope');
  }
  const n = data[1]!;
  if (data.length < 2 + n + 8) throw new FaultError(ErrorCode.CORRUPT_LOG, 'proposal envelope is truncated');
  const payload = data.subarray(2 + n + 8);
  if (n !== origin.length) return { seq: 0, payload };
  for (let i = 0; i < n; i++) if (data[2 + i] !== origin[i]) return { seq: 0, payload };
  return { seq: new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(2 + n), payload };
}

/** First byte of a {@link wrapConfRefusal} entry (a proposal's is 0x01). */
const REFUSAL = 0x02;

/** A membership change the leader refused, as the entry put in its place tells its proposer. */
export interface ConfRefusal {
  /** The proposer's id. */
  origin: string;
  /** The proposer's sequence number of the change. */
  seq: number;
  /** Why (an error code of quorumkv). */
  code: string;
  message: string;
}

/** Encodes a refused membership change for the entry the leader appends in its place: `[0x02][msgpack([origin, seq, code, message])]`. */
export function wrapConfRefusal(r: ConfRefusal): Uint8Array {
  const body = pack([r.origin, r.seq, r.code, r.message]);
  const out = new Uint8Array(1 + body.length);
  out[0] = REFUSAL;
  out.set(body, 1);
  return out;
}

/**
 * The refusal an entry's data carries, or undefined when the data is
 * something else (a proposal's envelope).
 * @throws FaultError `QUORUMKV_CORRUPT_LOG` when it is a refusal and malformed
 */
export function unwrapConfRefusal(data: Uint8Array): ConfRefusal | undefined {
  if (data.length === 0 || data[0] !== REFUSAL) return undefined;
  let v: unknown;
  try {
    v = unpack(data.subarray(1));
  } catch (err) {
    throw new FaultError(ErrorCode.CORRUPT_LOG, 'malformed membership change refusal', { cause: err });
  }
  if (!Array.isArray(v) || typeof v[0] !== 'string' || typeof v[1] !== 'number' || typeof v[2] !== 'string' || typeof v[3] !== 'string') {
    throw new FaultError(ErrorCode.CORRUPT_LOG, 'malformed membership change refusal');
  }
  return { origin: v[0], seq: v[1], code: v[2], message: v[3] };
}

const SNAPSHOT_VERSION = 1;

/**
 * What a node keeps in a snapshot's data: the state machine's own bytes and
 * the transport address of each member that was added with one. Membership
 * itself is in the snapshot's metadata (`ConfState`); addresses travel in
 * conf change entries, which a snapshot compacts away, so they are carried
 * here for members that restart from the snapshot or receive it.
 */
export interface SnapshotEnvelope {
  /** Member id to address (`host:port` for TCP), for members added with an address. */
  addresses: Record<string, string>;
  /**
   * What `StateMachine.snapshot()` returned; absent in the record a node
   * whose state machine is durable by itself (`StateMachine.sync`) keeps of
   * its own snapshots: the state machine holds the state.
   */
  data?: Uint8Array;
  /**
   * Ids removed from the cluster, which cannot be added back (the removal
   * is in the entries the snapshot compacts away); absent in snapshots of
   * earlier versions.
   */
  removed?: string[];
}

/** Encodes a snapshot's data as `msgpack([1, addresses, data or nil, removed ids])` (a buffer of its own). */
export function wrapSnapshot(env: SnapshotEnvelope): Uint8Array {
  const out = pack([SNAPSHOT_VERSION, env.addresses, env.data ?? null, env.removed ?? []]);
  // a view into the packer's shared buffer would keep all of it alive (a
  // copy: Buffer#slice, unlike Uint8Array#slice, is a view)
  return out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : new Uint8Array(out);
}

/**
 * Decodes what {@link wrapSnapshot} produced.
 * @throws FaultError `QUORUMKV_CORRUPT_SNAPSHOT` when the data is not a node snapshot
 */
export function unwrapSnapshot(bytes: Uint8Array): SnapshotEnvelope {
  let t: unknown;
  try {
    // maps as Maps: member ids are keys of the addresses, and a plain
    // object would turn the id `__proto__` into `__proto_`
    t = unpackWithMaps(bytes);
  } catch (err) {
    throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, 'snapshot data is not a node snapshot envelope', { cause: err });
  }
  if (!Array.isArray(t) || (t.length !== 3 && t.length !== 4) || t[0] !== SNAPSHOT_VERSION || !(t[2] instanceof Uint8Array || t[2] === null)) {
    throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, 'snapshot data is not a node snapshot envelope');
  }
  const raw = t[1] as unknown;
  if (!(raw instanceof Map)) {
    throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, 'snapshot envelope has malformed addresses');
  }
  const pairs: [string, string][] = [];
  for (const [id, a] of raw as Map<unknown, unknown>) {
    if (typeof id !== 'string' || typeof a !== 'string') throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, 'snapshot envelope has malformed addresses');
    pairs.push([id, a]);
  }
  // own properties, `__proto__` included (an assignment would set the prototype)
  const addresses: Record<string, string> = Object.fromEntries(pairs);
  const removed = t.length === 4 ? t[3] : [];
  if (!Array.isArray(removed) || removed.some((id) => typeof id !== 'string')) {
    throw new FaultError(ErrorCode.CORRUPT_SNAPSHOT, 'snapshot envelope has malformed removed ids');
  }
  const env: SnapshotEnvelope = { addresses, removed: removed as string[] };
  if (t[2] !== null) env.data = t[2];
  return env;
}
