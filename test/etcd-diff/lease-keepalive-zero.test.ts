// Regression test: a keep-alive of the lease id 0 fails with
// QUORUMKV_LEASE_NOT_FOUND, as etcd 3.4 answers it (TTL 0, which clientv3's
// KeepAliveOnce reads as "lease not found") and as the MVCC store does;
// KvNode used to refuse it as QUORUMKV_INVALID_ARGUMENT. Found with the
// keep-alives of the differential test, which now sends them to the KvNode
// targets too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isQuorumError } from '../../src/errors.js';
import { withSingleMember } from './single-member.js';

test('a keep-alive of the lease id 0 fails with lease not found, as on etcd', () =>
  withSingleMember(async (node) => {
    await assert.rejects(node.leaseRevoke(0), (err) => isQuorumError(err) && err.code === ErrorCode.LEASE_NOT_FOUND);
    await assert.rejects(node.leaseKeepAlive(0), (err) => isQuorumError(err) && err.code === ErrorCode.LEASE_NOT_FOUND);
  }));
