// The frame format and its incremental decoder: any split of the byte stream
// gives the same frames (property test with fast-check; replay a failure with
// the seed and path fast-check prints), limits are checked on the header, and
// corrupt frames are refused. Also the "host:port" address parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc32, encodeMessage, decodeMessage } from '../../src/codec/index.js';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { message } from '../../src/raftpb/index.js';
import { FRAME_HEADER_BYTES, FrameDecoder, FrameKind, encodeFrame, formatAddress, parseAddress } from '../../src/transport/index.js';

test('a frame is [u32 length][u32 crc32][0x92 kind body] with the CRC over the payload', () => {
  const body = encodeMessage(message({ type: 'MsgHeartbeat', from: 'a', to: 'b', term: 5 }));
  const f = encodeFrame(FrameKind.Message, body);
  assert.equal(f.readUInt32BE(0), body.length + 2);
  assert.equal(f.readUInt32BE(4), crc32(f.subarray(FRAME_HEADER_BYTES)));
  assert.equal(f[8], 0x92);
  assert.equal(f[9], FrameKind.Message);
  assert.deepEqual(decodeMessage(f.subarray(10)).term, 5);
});

test('the decoder yields the same frames however the stream is split', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(FrameKind.Hello, FrameKind.Message, FrameKind.SnapshotChunk, FrameKind.SnapshotAck), fc.uint8Array({ maxLength: 3000 })), { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 50 }),
      (frames, cuts) => {
        const stream = Buffer.concat(frames.map(([k, b]) => encodeFrame(k, b)));
        const got: Array<[number, string]> = [];
        const d = new FrameDecoder(4096);
        let pos = 0;
        let i = 0;
        while (pos < stream.length) {
          const n = cuts[i++ % cuts.length]!;
          d.push(stream.subarray(pos, pos + n), (kind, body) => got.push([kind, Buffer.from(body).toString('hex')]));
          pos += n;
        }
        assert.deepEqual(got, frames.map(([k, b]) => [k, Buffer.from(b).toString('hex')]));
        assert.ok(d.idle);
      },
    ),
  );
});

test('delivered bodies are private copies, not views of the pushed chunk', () => {
  const chunk = encodeFrame(FrameKind.Message, Uint8Array.of(1, 2, 3));
  let body: Uint8Array | undefined;
  new FrameDecoder(1024).push(chunk, (_k, b) => (body = b));
  chunk.fill(0);
  assert.deepEqual([...body!], [1, 2, 3]);
});

test('an oversized length prefix split across chunks throws FRAME_TOO_LARGE once the header is complete', () => {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(1025, 0);
  const d = new FrameDecoder(1024);
  d.push(header.subarray(0, 3), () => assert.fail('no frame'));
  assert.throws(() => d.push(header.subarray(3), () => {}), (e: unknown) => isQuorumError(e, ErrorCode.FRAME_TOO_LARGE));
  const whole = new FrameDecoder(1024);
  assert.throws(() => whole.push(header, () => {}), (e: unknown) => isQuorumError(e, ErrorCode.FRAME_TOO_LARGE));
});

test('a CRC mismatch, a short payload or an unknown kind throws MALFORMED_FRAME and delivers nothing of that frame', () => {
  const good = encodeFrame(FrameKind.Message, Uint8Array.of(1, 2, 3));
  const badCrc = Buffer.from(good);
  badCrc[12] ^= 1;
  const short = Buffer.alloc(9);
  short.writeUInt32BE(1, 0);
  const badKind = Buffer.from(good);
  badKind[9] = 9;
  badKind.writeUInt32BE(crc32(badKind.subarray(8)), 4);
  const notArray = Buffer.from(good);
  notArray[8] = 0x91;
  notArray.writeUInt32BE(crc32(notArray.subarray(8)), 4);
  for (const [name, bad] of [['crc', badCrc], ['short', short], ['kind', badKind], ['prefix', notArray]] as const) {
    const seen: number[] = [];
    assert.throws(
      () => new FrameDecoder(1024).push(Buffer.concat([good, bad]), (k) => seen.push(k)),
      (e: unknown) => isQuorumError(e, ErrorCode.MALFORMED_FRAME),
      name,
    );
    assert.deepEqual(seen, [FrameKind.Message], `${name}: only the good frame before it`);
  }
});

test('addresses parse as host:port, IPv6 in brackets, and round-trip through formatAddress', () => {
  assert.deepEqual(parseAddress('127.0.0.1:2380'), { host: '127.0.0.1', port: 2380 });
  assert.deepEqual(parseAddress('node-1.example:1'), { host: 'node-1.example', port: 1 });
  assert.deepEqual(parseAddress('[::1]:65535'), { host: '::1', port: 65535 });
  assert.equal(formatAddress('::1', 7), '[::1]:7');
  assert.deepEqual(parseAddress(formatAddress('fe80::1', 80)), { host: 'fe80::1', port: 80 });
  for (const bad of ['', 'host', ':80', 'host:', 'host:0', 'host:65536', 'host:8o', '::1:80', '[::1:80', '[]:80']) {
    assert.throws(() => parseAddress(bad), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT), bad);
  }
});

test('an address whose host is neither an IP address nor a host name is refused, not dialed in vain forever', () => {
  // " 10.0.0.2:2380" is what splitting "a=10.0.0.1:2380, b=10.0.0.2:2380" on
  // commas leaves: every dial of it fails its DNS lookup
  for (const bad of [
    ' 10.0.0.2:2380',
    '10.0.0.2 :2380',
    'node 2:2380',
    '\tnode-2:2380',
    'http//node-2:2380',
    'user@node-2:2380',
    'node-2/x:2380',
    'node..2:2380',
    '.node-2:2380',
    'nœud-2:2380',
    '[localhost]:2380',
    '[10.0.0.2]:2380',
    '[::1 ]:2380',
    '[fe80::zz]:2380',
    `${'a'.repeat(255)}:2380`,
  ]) {
    assert.throws(() => parseAddress(bad), (e: unknown) => isQuorumError(e, ErrorCode.INVALID_ARGUMENT), JSON.stringify(bad));
  }
  for (const [good, host] of [
    ['node_2.example.:2380', 'node_2.example.'],
    ['xn--nud-2-cua.example:2380', 'xn--nud-2-cua.example'],
    ['[fe80::1%eth0]:2380', 'fe80::1%eth0'],
    ['[::ffff:10.0.0.2]:2380', '::ffff:10.0.0.2'],
    ['0.0.0.0:2380', '0.0.0.0'],
    ['[::]:2380', '::'],
  ] as const) {
    assert.deepEqual(parseAddress(good), { host, port: 2380 }, good);
  }
});
