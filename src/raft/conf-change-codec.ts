/**
 * The bytes of a `ConfChange` entry's `data`. The Raft core must write them
 * (`proposeConfChange`, `bootstrap`) and read them (a leader checks forwarded
 * conf changes), but it may not depend on the codec layer or on msgpackr
 * (the layer rule keeps `src/raft/` free of packages). So this file encodes
 * exactly the shape `src/codec`'s `encodeConfChange` produces — the msgpack
 * array `[typeCode, nodeId, context?]` with `typeCode` 0 = AddNode,
 * 1 = AddLearnerNode, 2 = RemoveNode, 3 = UpdateNode — and decodes any standard msgpack
 * encoding of it. The two are cross-checked by a test, so a driver may decode
 * committed ConfChange entries with either.
 * @module
 */
import type { ConfChange, ConfChangeType } from '../raftpb/index.js';

const TYPES: readonly ConfChangeType[] = ['AddNode', 'AddLearnerNode', 'RemoveNode', 'UpdateNode'];
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Encodes a ConfChange as the data of a `ConfChange` entry. */
export function encodeConfChangeData(cc: ConfChange): Uint8Array {
  const code = TYPES.indexOf(cc.type);
  if (code < 0) throw new TypeError(`unknown conf change type ${String(cc.type)}`);
  const id = utf8Encoder.encode(cc.nodeId);
  const ctx = cc.context;
  let size = 1 + 1 + strHeaderSize(id.length) + id.length;
  if (ctx !== undefined) size += binHeaderSize(ctx.length) + ctx.length;
  const out = new Uint8Array(size);
  let p = 0;
  out[p++] = ctx === undefined ? 0x92 : 0x93; // fixarray of 2 or 3
  out[p++] = code; // positive fixint
  p = writeHeader(out, p, id.length, 'str');
  out.set(id, p);
  p += id.length;
  if (ctx !== undefined) {
    p = writeHeader(out, p, ctx.length, 'bin');
    out.set(ctx, p);
  }
  return out;
}

/**
 * Decodes the data of a `ConfChange` entry; undefined when it is not a
 * well-formed ConfChange (never throws: the bytes may come from the network).
 */
export function decodeConfChangeData(data: Uint8Array): ConfChange | undefined {
  const r = new Reader(data);
  const n = r.arrayHeader();
  if (n !== 2 && n !== 3) return undefined;
  const code = r.uint();
  if (code === undefined) return undefined;
  const type = TYPES[code];
  if (type === undefined) return undefined;
  const id = r.bytes('str');
  if (id === undefined) return undefined;
  let nodeId: string;
  try {
    nodeId = utf8Decoder.decode(id);
  } catch {
    return undefined;
  }
  const cc: ConfChange = { type, nodeId };
  if (n === 3) {
    const ctx = r.bytes('bin');
    if (ctx === undefined) return undefined;
    cc.context = new Uint8Array(ctx); // a plain copy, whatever the input type
  }
  if (!r.atEnd()) return undefined;
  return cc;
}

function strHeaderSize(n: number): number {
  if (n < 32) return 1;
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  return 5;
}

function binHeaderSize(n: number): number {
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  return 5;
}

function writeHeader(out: Uint8Array, p: number, n: number, kind: 'str' | 'bin'): number {
  if (kind === 'str' && n < 32) {
    out[p++] = 0xa0 | n;
    return p;
  }
  if (n < 0x100) {
    out[p++] = kind === 'str' ? 0xd9 : 0xc4;
    out[p++] = n;
  } else if (n < 0x10000) {
    out[p++] = kind === 'str' ? 0xda : 0xc5;
    out[p++] = n >>> 8;
    out[p++] = n & 0xff;
  } else {
    out[p++] = kind === 'str' ? 0xdb : 0xc6;
    out[p++] = (n >>> 24) & 0xff;
    out[p++] = (n >>> 16) & 0xff;
    out[p++] = (n >>> 8) & 0xff;
    out[p++] = n & 0xff;
  }
  return p;
}

/** A bounds-checked msgpack reader for the few formats above. */
class Reader {
  private p = 0;
  constructor(private readonly b: Uint8Array) {}

  atEnd(): boolean {
    return this.p === this.b.length;
  }

  private byte(): number | undefined {
    return this.p < this.b.length ? this.b[this.p++] : undefined;
  }

  private be(n: number): number | undefined {
    if (this.p + n > this.b.length) return undefined;
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + this.b[this.p++]!;
    return v;
  }

  arrayHeader(): number | undefined {
    const t = this.byte();
    if (t === undefined) return undefined;
    if (t >= 0x90 && t <= 0x9f) return t & 0x0f;
    if (t === 0xdc) return this.be(2);
    if (t === 0xdd) return this.be(4);
    return undefined;
  }

  uint(): number | undefined {
    const t = this.byte();
    if (t === undefined) return undefined;
    if (t <= 0x7f) return t;
    if (t === 0xcc) return this.be(1);
    if (t === 0xcd) return this.be(2);
    if (t === 0xce) return this.be(4);
    return undefined;
  }

  bytes(kind: 'str' | 'bin'): Uint8Array | undefined {
    const t = this.byte();
    if (t === undefined) return undefined;
    let n: number | undefined;
    if (kind === 'str' && t >= 0xa0 && t <= 0xbf) n = t & 0x1f;
    else if (t === (kind === 'str' ? 0xd9 : 0xc4)) n = this.be(1);
    else if (t === (kind === 'str' ? 0xda : 0xc5)) n = this.be(2);
    else if (t === (kind === 'str' ? 0xdb : 0xc6)) n = this.be(4);
    if (n === undefined || this.p + n > this.b.length) return undefined;
    const out = this.b.subarray(this.p, this.p + n);
    this.p += n;
    return out;
  }
}
