/**
 * The public surface of quorumkv's operations features, beside the
 * `KvNode` methods that use them (see docs/operations.md): alarms, the
 * backend quota, backup files and restore, database size and
 * defragmentation, and metrics.
 * @module
 */
export { ALARM_TYPES, growsStore, type AlarmMember, type AlarmType } from './alarms.js';
export { BACKUP_MAGIC, readBackupFile, type BackupHeader, type BackupItem } from './backup-file.js';
export type { RestoreOptions, RestoreResult } from './backup-restore.js';
export type { DbSize, DefragmentResult } from './maintenance-size.js';
export { ServerMetrics, serverMetrics, type MetricsSource } from './metrics.js';
export { DEFAULT_QUOTA_BACKEND_BYTES, KV_OVERHEAD_BYTES, LEASE_OVERHEAD_BYTES, requestCost } from './quota.js';
