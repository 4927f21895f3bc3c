/**
 * msgpackr encodings of the Raft wire types. Each type is packed as a
 * positional array (no field names on the wire), and every decoder checks
 * the shape it gets and throws a `FaultError` with code
 * `QUORUMKV_MALFORMED_FRAME` on anything else, so garbage never reaches the
 * Raft core.
 * @module
 */
import { Packr } from 'msgpackr';
import { ErrorCode, FaultError } from '../errors.js';
import { entryBytes } from './entry-bytes.js';
import {
  MESSAGE_TYPES,
  type ConfChange,
  type ConfChangeType,
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  type Message,
  type MessageType,
  type Snapshot,
} from '../raftpb/index.js';

const PACKR_OPTIONS = { useRecords: false, moreTypes: false, mapsAsObjects: true } as const;
const packr = new Packr(PACKR_OPTIONS);

/**
 * When the packer's buffer is larger than this many bytes, the packed
 * result gets a buffer of its own and the packer starts over on a small one.
 * msgpackr packs into one buffer, kept at module level and shared by every
 * `Packr`, returning views into it; it grows that buffer to four times a
 * value that does not fit, and when the buffer is full it takes a new one
 * as large as the last. After one large value (a request near the 1.5 MiB
 * limit, a snapshot of the whole store) every later buffer would be as
 * large, and any view kept a while would keep one alive.
 */
const LARGE_PACK_BYTES = 1024 * 1024;
/** Bytes of the buffer the packer starts over on (msgpackr's own first size). */
const START_PACK_BYTES = 8192;

function packWith(value: unknown): Uint8Array {
  const out = packr.pack(value);
  if (out.buffer.byteLength <= LARGE_PACK_BYTES) return out;
  const own = new Uint8Array(out);
  // a fresh buffer: nothing returned so far points into it
  packr.useBuffer(Buffer.allocUnsafeSlow(START_PACK_BYTES));
  return own;
}

const ENTRY_TYPES: readonly EntryType[] = ['Normal', 'ConfChange'];
const CONF_CHANGE_TYPES: readonly ConfChangeType[] = ['AddNode', 'AddLearnerNode', 'RemoveNode', 'UpdateNode'];
const MESSAGE_TYPE_CODE = new Map<MessageType, number>(MESSAGE_TYPES.map((t, i) => [t, i]));

function malformed(what: string): never {
  throw new FaultError(ErrorCode.MALFORMED_FRAME, `malformed ${what}`);
}

function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) malformed(what);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') malformed(what);
  return v;
}

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) malformed(what);
  return v;
}

function strArray(v: unknown, what: string): string[] {
  if (!Array.isArray(v)) malformed(what);
  for (const s of v) str(s, what);
  return v as string[];
}

/** Packs any msgpack-able value (used by layers above for their own records). */
export function pack(value: unknown): Uint8Array {
  return packWith(value);
}

/**
 * Unpacks bytes produced by {@link pack}: exactly one value.
 *
 * Read as the first value of a sequence, then checked to end where the
 * bytes do: msgpackr's `unpack` reports bytes left after the value with an
 * error message holding the value as JSON, which it builds first (seconds
 * of the event loop for a few MiB of binary from a peer).
 * Maps decode as plain objects (a key `__proto__` as `__proto_`, as
 * msgpackr does); see {@link unpackWithMaps} where keys are data.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME` when the bytes are not one msgpack value
 */
export function unpack(buf: Uint8Array): unknown {
  return unpackWith(packr, buf);
}

/** Reads maps as `Map`s (msgpackr's `mapsAsObjects: false`). */
const mapReader = new Packr({ ...PACKR_OPTIONS, mapsAsObjects: false });

/**
 * {@link unpack}, with every msgpack map decoded as a `Map`: its keys come
 * back exactly, `__proto__` included (a plain object cannot hold that key
 * as data, so msgpackr renames it). The bytes are the same as for `unpack`.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME` when the bytes are not one msgpack value
 */
export function unpackWithMaps(buf: Uint8Array): unknown {
  return unpackWith(mapReader, buf);
}

function unpackWith(reader: Packr, buf: Uint8Array): unknown {
  let value: unknown;
  let end = -1;
  try {
    reader.unpackMultiple(buf, (v: unknown, _start?: number, stop?: number) => {
      value = v;
      end = stop ?? -1;
      return false;
    });
  } catch (err) {
    throw new FaultError(ErrorCode.MALFORMED_FRAME, 'malformed msgpack data', { cause: err });
  }
  if (end !== buf.length) throw new FaultError(ErrorCode.MALFORMED_FRAME, 'malformed msgpack data: bytes after the value');
  return value;
}

/** Positional form of an entry: `[term, index, typeCode, data]`. */
export function entryToTuple(e: Entry): unknown[] {
  return [e.term, e.index, e.type === 'Normal' ? 0 : 1, e.data];
}

/** Inverse of {@link entryToTuple}; validates the shape. */
export function entryFromTuple(t: unknown): Entry {
  if (!Array.isArray(t) || t.length !== 4) malformed('entry');
  const type = ENTRY_TYPES[num(t[2], 'entry type')];
  if (type === undefined) malformed('entry type');
  return { term: num(t[0], 'entry term'), index: num(t[1], 'entry index'), type, data: bytes(t[3], 'entry data') };
}

function confStateToTuple(cs: ConfState): unknown[] {
  return [cs.voters, cs.learners];
}

function confStateFromTuple(t: unknown): ConfState {
  if (!Array.isArray(t) || t.length !== 2) malformed('conf state');
  return { voters: strArray(t[0], 'voters'), learners: strArray(t[1], 'learners') };
}

/** Positional form of a snapshot: `[index, term, confState, data]`. */
export function snapshotToTuple(s: Snapshot): unknown[] {
  return [s.metadata.index, s.metadata.term, confStateToTuple(s.metadata.confState), s.data];
}

/** Inverse of {@link snapshotToTuple}; validates the shape. */
export function snapshotFromTuple(t: unknown): Snapshot {
  if (!Array.isArray(t) || t.length !== 4) malformed('snapshot');
  return {
    metadata: {
      index: num(t[0], 'snapshot index'),
      term: num(t[1], 'snapshot term'),
      confState: confStateFromTuple(t[2]),
    },
    data: bytes(t[3], 'snapshot data'),
  };
}

/** Encodes one entry. */
export function encodeEntry(e: Entry): Uint8Array {
  return packWith(entryToTuple(e));
}

/**
 * Decodes one entry.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME`
 */
export function decodeEntry(buf: Uint8Array): Entry {
  return entryFromTuple(unpack(buf));
}

/**
 * {@link entryFromTuple} for an entry a member keeps in its log: its data
 * is copied out of the buffer it was decoded from (a message or a log
 * segment), which it would otherwise keep alive as long as the entry, into
 * memory shared only with other entries' data.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME` when `t` is not an entry tuple
 */
export function keptEntryFromTuple(t: unknown): Entry {
  const e = entryFromTuple(t);
  e.data = entryBytes(e.data);
  return e;
}

/** Encodes a HardState as `[term, vote, commit]`. */
export function encodeHardState(hs: HardState): Uint8Array {
  return packWith([hs.term, hs.vote, hs.commit]);
}

/**
 * Decodes a HardState.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME`
 */
export function decodeHardState(buf: Uint8Array): HardState {
  const t = unpack(buf);
  if (!Array.isArray(t) || t.length !== 3) malformed('hard state');
  return { term: num(t[0], 'term'), vote: str(t[1], 'vote'), commit: num(t[2], 'commit') };
}

/** Encodes a snapshot (metadata and data). */
export function encodeSnapshot(s: Snapshot): Uint8Array {
  return packWith(snapshotToTuple(s));
}

/**
 * Decodes a snapshot.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME`
 */
export function decodeSnapshot(buf: Uint8Array): Snapshot {
  return snapshotFromTuple(unpack(buf));
}

/** Encodes a ConfChange as `[typeCode, nodeId, context?]` (the data of a ConfChange entry). */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const t: unknown[] = [CONF_CHANGE_TYPES.indexOf(cc.type), cc.nodeId];
  if (cc.context !== undefined) t.push(cc.context);
  return packWith(t);
}

/**
 * Decodes a ConfChange.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME`
 */
export function decodeConfChange(buf: Uint8Array): ConfChange {
  const t = unpack(buf);
  if (!Array.isArray(t) || t.length < 2 || t.length > 3) malformed('conf change');
  const type = CONF_CHANGE_TYPES[num(t[0], 'conf change type')];
  if (type === undefined) malformed('conf change type');
  const cc: ConfChange = { type, nodeId: str(t[1], 'node id') };
  if (t.length === 3) cc.context = bytes(t[2], 'conf change context');
  return cc;
}

/**
 * Positional form of a message:
 * `[type, to, from, term, logTerm, index, entries, commit, reject, rejectHint, snapshot|null, context|null]`.
 */
export function messageToTuple(m: Message): unknown[] {
  return [
    MESSAGE_TYPE_CODE.get(m.type),
    m.to,
    m.from,
    m.term,
    m.logTerm,
    m.index,
    m.entries.map(entryToTuple),
    m.commit,
    m.reject,
    m.rejectHint,
    m.snapshot === undefined ? null : snapshotToTuple(m.snapshot),
    m.context === undefined ? null : m.context,
  ];
}

/** Inverse of {@link messageToTuple}; validates the shape. */
export function messageFromTuple(t: unknown): Message {
  if (!Array.isArray(t) || t.length !== 12) malformed('message');
  const type = MESSAGE_TYPES[num(t[0], 'message type')];
  if (type === undefined) malformed('message type');
  if (!Array.isArray(t[6])) malformed('message entries');
  if (typeof t[8] !== 'boolean') malformed('message reject');
  const m: Message = {
    type,
    to: str(t[1], 'message to'),
    from: str(t[2], 'message from'),
    term: num(t[3], 'message term'),
    logTerm: num(t[4], 'message logTerm'),
    index: num(t[5], 'message index'),
    // kept in the log long after the message: copied out of its buffer
    entries: (t[6] as unknown[]).map(keptEntryFromTuple),
    commit: num(t[7], 'message commit'),
    reject: t[8],
    rejectHint: num(t[9], 'message rejectHint'),
  };
  if (t[10] !== null) m.snapshot = snapshotFromTuple(t[10]);
  if (t[11] !== null) m.context = bytes(t[11], 'message context');
  return m;
}

/** Encodes a message. */
export function encodeMessage(m: Message): Uint8Array {
  return packWith(messageToTuple(m));
}

/**
 * Decodes a message.
 * @throws FaultError `QUORUMKV_MALFORMED_FRAME`
 */
export function decodeMessage(buf: Uint8Array): Message {
  return messageFromTuple(unpack(buf));
}
