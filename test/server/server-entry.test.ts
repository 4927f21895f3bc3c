// The lease keep-alive entry and its time-to-live form: what a member
// proposes and the leader decodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from '../../src/codec/index.js';
import { isQuorumError, ErrorCode } from '../../src/errors.js';
import { decodeKeepAliveRequest, encodeKeepAliveRequest } from '../../src/server/server-entry.js';

test('a keep-alive request and a time-to-live request round-trip; the time-to-live mark is nothing but 1', () => {
  const keepAlive = { lease: 7, origin: 'a', nonce: 'r/1' };
  const timeToLive = { ...keepAlive, timeToLive: true as const };
  // an entry is [kind][payload]: decode the payload
  assert.deepEqual(decodeKeepAliveRequest(encodeKeepAliveRequest(keepAlive).subarray(1)), keepAlive);
  assert.deepEqual(decodeKeepAliveRequest(encodeKeepAliveRequest(timeToLive).subarray(1)), timeToLive);
  for (const bad of [[7, 'a', 'r/1', 2], [7, 'a', 'r/1', true], [7, 'a', 'r/1', 1, 1]]) {
    assert.throws(
      () => decodeKeepAliveRequest(pack(bad)),
      (err: unknown) => isQuorumError(err, ErrorCode.MALFORMED_FRAME),
      JSON.stringify(bad),
    );
  }
});
