/**
 * Options of {@link TcpTransport}, their defaults and their validation.
 * @module
 */
import { createSecureContext } from 'node:tls';
import { ErrorCode, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';
import { checkOptionKeys, type NoKeyMissing } from '../option-keys.js';
import { MAX_TIMER_MS } from '../timer-limit.js';
import { parseAddress, type HostPort } from './address.js';

/**
 * Mutual TLS material (PEM). Both sides present a certificate signed by `ca`
 * and both verify the other's (`requestCert` and `rejectUnauthorized` on the
 * server, `rejectUnauthorized` on the client); the dialer also checks that the
 * peer's certificate names the host it dialed (subjectAltName IP or DNS).
 */
export interface TcpTlsOptions {
  /** This node's private key. */
  key: string | Buffer;
  /** This node's certificate (chain). */
  cert: string | Buffer;
  /** The certificate authority (or authorities) peers' certificates must chain to. */
  ca: string | Buffer | Array<string | Buffer>;
}

/** Reconnection backoff: the n-th retry waits about `min(maxMs, initialMs * 2^n)`, jittered. */
export interface BackoffOptions {
  /** First retry delay, ms (default 100). */
  initialMs: number;
  /** Largest retry delay, ms (default 5000). */
  maxMs: number;
}

/** Options of {@link TcpTransport}. */
export interface TcpTransportOptions {
  /** This node's id (non-empty, well-formed Unicode, not beginning with U+FEFF, at most 255 UTF-8 bytes: it travels in every handshake). */
  id: string;
  /** Cluster id; every connection's handshake must carry the same one (non-empty, well-formed Unicode, not beginning with U+FEFF, at most 255 UTF-8 bytes). */
  clusterId: string;
  /** Where to listen. Port 0 picks a free port; read it from `address()` after `start()`. */
  listen: { host: string; port: number };
  /** Known peers: an object of id to `"host:port"` (IPv6 `"[::1]:port"`), not an array of addresses. More with `addPeer`. */
  peers?: Record<string, string>;
  /**
   * Largest frame payload accepted or sent, bytes. Default 4 MiB
   * ({@link DEFAULT_MAX_FRAME_BYTES}): room for a `MsgApp` of Raft's usual
   * 1 MiB `maxSizePerMsg` plus one oversized entry under the 1.5 MiB request
   * limit. A message that encodes larger is dropped (reported unreachable);
   * snapshots are chunked and are not bound by it. Minimum 2048
   * ({@link MIN_MAX_FRAME_BYTES}: a snapshot chunk of at least 1 KiB and
   * its framing).
   */
  maxFrameBytes?: number;
  /** Mutual TLS; plain TCP when absent. */
  tls?: TcpTlsOptions;
  /** Time to connect and receive the peer's handshake, ms; also the time an accepted connection has to send its handshake. Default 3000. */
  dialTimeoutMs?: number;
  /** Reconnection backoff, ms. Default `{ initialMs: 100, maxMs: 5000 }`. */
  backoff?: BackoffOptions;
  /** Bound of each peer's send queue, in messages (default 4096, as etcd's stream buffer). */
  maxQueuedMessages?: number;
  /** Bound of each peer's send queue, in encoded bytes (default 64 MiB). */
  maxQueuedBytes?: number;
  /** Size of a snapshot chunk, bytes (default 1 MiB, at most `maxFrameBytes - 1024`). */
  snapshotChunkBytes?: number;
  /** Largest snapshot message accepted, bytes once encoded (default 1 GiB). */
  maxSnapshotBytes?: number;
  /** A snapshot stream with no progress for this long fails, ms (default 30000). */
  snapshotIdleTimeoutMs?: number;
  /**
   * How often each side of a message stream looks at it, ms (default 1000):
   * a side that has written nothing since its last look writes a heartbeat
   * frame, so the peer reads something at least every 2 × `heartbeatMs`.
   * The same on every member, as the peers' read timeouts count on it.
   */
  heartbeatMs?: number;
  /**
   * A message stream on which nothing has been read for this long is closed
   * (and redialed by its dialer), ms (default 5000, etcd's
   * `ConnReadTimeout`, or 3 times `heartbeatMs` if that is more). It is
   * noticed at a look (every `heartbeatMs`), less than `readTimeoutMs +
   * 2 × heartbeatMs` after the last byte. This is how a stream that a silent partition killed
   * (no FIN, no RST: a dropped route, lost NAT or firewall state) is told
   * from a quiet one, where TCP alone would keep retransmitting for many
   * minutes. At least 3 times `heartbeatMs`.
   */
  readTimeoutMs?: number;
}

/** Default {@link TcpTransportOptions.maxFrameBytes}: 4 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** Room kept in a frame for a chunk's framing and msgpack overhead, bytes. */
export const CHUNK_OVERHEAD_BYTES = 1024;

/**
 * Smallest {@link TcpTransportOptions.maxFrameBytes}: 2048 bytes, so that a
 * snapshot chunk (at most `maxFrameBytes - CHUNK_OVERHEAD_BYTES`) holds at
 * least 1 KiB. Below it there is no room for a chunk, and every snapshot
 * would fail.
 */
export const MIN_MAX_FRAME_BYTES = 2 * CHUNK_OVERHEAD_BYTES;

/** The options with every default filled in and every address parsed. */
export interface ResolvedTcpOptions {
  id: string;
  clusterId: string;
  listen: { host: string; port: number };
  peers: Map<string, HostPort | undefined>;
  maxFrameBytes: number;
  tls: TcpTlsOptions | undefined;
  dialTimeoutMs: number;
  backoff: BackoffOptions;
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  snapshotChunkBytes: number;
  maxSnapshotBytes: number;
  snapshotIdleTimeoutMs: number;
  heartbeatMs: number;
  readTimeoutMs: number;
}

/** Every key of {@link TcpTransportOptions}: any other is refused. */
const TCP_OPTION_KEYS = [
  'id',
  'clusterId',
  'listen',
  'peers',
  'maxFrameBytes',
  'tls',
  'dialTimeoutMs',
  'backoff',
  'maxQueuedMessages',
  'maxQueuedBytes',
  'snapshotChunkBytes',
  'maxSnapshotBytes',
  'snapshotIdleTimeoutMs',
  'heartbeatMs',
  'readTimeoutMs',
] as const satisfies readonly (keyof TcpTransportOptions)[];
// compiles only while the list names every key of the interface
type TcpOptionKeysComplete = NoKeyMissing<Exclude<keyof TcpTransportOptions, (typeof TCP_OPTION_KEYS)[number]>>;

function invalid(message: string): never {
  throw new UsageError(ErrorCode.INVALID_CONFIG, message);
}

/**
 * Checks mutual TLS material before anything uses it: its shape, and that
 * Node's TLS accepts it (PEM that parses, a key that matches its certificate).
 * @param tls - `{ key, cert, ca }`, PEM strings or buffers
 * @throws UsageError `QUORUMKV_INVALID_CONFIG` naming what TLS refused
 */
export function checkTlsOptions(tls: unknown): void {
  const t = tls as Partial<TcpTlsOptions> | null;
  if (t === null || typeof t !== 'object' || t.key === undefined || t.cert === undefined || t.ca === undefined) {
    invalid('tls must be { key, cert, ca }');
  }
  checkOptionKeys(t, ['key', 'cert', 'ca'], 'tls');
  try {
    createSecureContext({ key: t.key, cert: t.cert, ca: t.ca });
  } catch (err) {
    invalid(`tls: the key, certificate or CA is not usable: ${(err as Error).message}`);
  }
}

/** A UTF-16 surrogate without its pair: UTF-8 cannot carry it (it becomes U+FFFD). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * What is wrong with an id carried in the handshake (this node's id, the
 * cluster id), if anything: a non-empty string of well-formed Unicode, not
 * beginning with U+FEFF, at most 255 UTF-8 bytes. A longer one makes a handshake the acceptor refuses
 * as too large; a lone surrogate arrives as U+FFFD and does not match.
 */
function handshakeIdProblem(v: unknown): string | undefined {
  if (typeof v !== 'string' || v === '') return 'be a non-empty string';
  if (LONE_SURROGATE.test(v)) return 'be well-formed Unicode (it holds a lone surrogate)';
  if (v.charCodeAt(0) === 0xfeff) return 'not begin with U+FEFF (a byte order mark, which some decoders drop)';
  if (Buffer.byteLength(v, 'utf8') > 255) return 'be at most 255 UTF-8 bytes';
  return undefined;
}

function positiveInt(v: unknown, name: string, def: number, min = 1): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) invalid(`${name} must be an integer >= ${min}, got ${describeValue(v)}`);
  return v;
}

/** {@link positiveInt} for a delay in ms that sets a timer: at most {@link MAX_TIMER_MS} (above it Node.js fires the timer after 1 ms). */
function timerMs(v: unknown, name: string, def: number): number {
  const ms = positiveInt(v, name, def);
  if (ms > MAX_TIMER_MS) invalid(`${name} must be at most ${MAX_TIMER_MS} ms (the longest timer of Node.js), got ${ms}`);
  return ms;
}

/**
 * Checks `o` and fills in defaults.
 * @throws UsageError `QUORUMKV_INVALID_CONFIG` on any invalid option
 */
export function resolveTcpOptions(o: TcpTransportOptions): ResolvedTcpOptions {
  if (o === null || typeof o !== 'object') invalid('TcpTransport options must be an object');
  checkOptionKeys(o, TCP_OPTION_KEYS, 'TcpTransport options');
  // both travel in every handshake, which an acceptor reads under
  // HANDSHAKE_MAX_FRAME_BYTES and compares once decoded
  const idProblem = handshakeIdProblem(o.id);
  if (idProblem !== undefined) invalid(`id must ${idProblem}`);
  const clusterProblem = handshakeIdProblem(o.clusterId);
  if (clusterProblem !== undefined) invalid(`clusterId must ${clusterProblem}`);
  const listen = o.listen;
  if (listen === null || typeof listen !== 'object' || typeof listen.host !== 'string' || listen.host === '') {
    invalid('listen must be { host, port }');
  }
  checkOptionKeys(listen, ['host', 'port'], 'TcpTransport options.listen');
  if (!Number.isSafeInteger(listen.port) || listen.port < 0 || listen.port > 65535) invalid('listen.port must be an integer in 0..65535');
  // an array of addresses was taken for peers '0', '1', ...; a number, or
  // a Map (whose entries are no own keys), for none
  const peersProto = o.peers === null || typeof o.peers !== 'object' ? undefined : (Object.getPrototypeOf(o.peers) as unknown);
  if (o.peers !== undefined && peersProto !== Object.prototype && peersProto !== null) {
    invalid('peers must be a plain object of member id to "host:port" (for a Map, pass Object.fromEntries(map))');
  }
  const peers = new Map<string, HostPort | undefined>();
  for (const [id, addr] of Object.entries(o.peers ?? {})) {
    if (id === '') invalid('peer ids must be non-empty');
    if (id === o.id) continue;
    try {
      peers.set(id, parseAddress(addr));
    } catch (err) {
      invalid(`peer ${id}: ${(err as Error).message}`);
    }
  }
  const maxFrameBytes = positiveInt(o.maxFrameBytes, 'maxFrameBytes', DEFAULT_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES);
  if (maxFrameBytes > 0xffffffff) invalid('maxFrameBytes must fit in 32 bits');
  const chunkMax = maxFrameBytes - CHUNK_OVERHEAD_BYTES;
  const snapshotChunkBytes = positiveInt(o.snapshotChunkBytes, 'snapshotChunkBytes', Math.min(1024 * 1024, chunkMax));
  if (snapshotChunkBytes > chunkMax) invalid(`snapshotChunkBytes must be at most maxFrameBytes - ${CHUNK_OVERHEAD_BYTES}`);
  const backoff = o.backoff ?? { initialMs: 100, maxMs: 5000 };
  if (backoff === null || typeof backoff !== 'object') invalid('backoff must be { initialMs, maxMs }');
  checkOptionKeys(backoff, ['initialMs', 'maxMs'], 'TcpTransport options.backoff');
  const initialMs = timerMs(backoff.initialMs, 'backoff.initialMs', 100);
  const maxMs = timerMs(backoff.maxMs, 'backoff.maxMs', 5000);
  if (maxMs < initialMs) invalid('backoff.maxMs must be >= backoff.initialMs');
  const heartbeatMs = timerMs(o.heartbeatMs, 'heartbeatMs', 1000);
  const readTimeoutMs = positiveInt(o.readTimeoutMs, 'readTimeoutMs', Math.max(5000, 3 * heartbeatMs));
  if (readTimeoutMs < 3 * heartbeatMs) invalid(`readTimeoutMs must be at least 3 times heartbeatMs, got ${readTimeoutMs} and ${heartbeatMs}`);
  const tls = o.tls;
  if (tls !== undefined) checkTlsOptions(tls);
  return {
    id: o.id,
    clusterId: o.clusterId,
    listen: { host: listen.host, port: listen.port },
    peers,
    maxFrameBytes,
    tls,
    dialTimeoutMs: timerMs(o.dialTimeoutMs, 'dialTimeoutMs', 3000),
    backoff: { initialMs, maxMs },
    maxQueuedMessages: positiveInt(o.maxQueuedMessages, 'maxQueuedMessages', 4096),
    maxQueuedBytes: positiveInt(o.maxQueuedBytes, 'maxQueuedBytes', 64 * 1024 * 1024),
    snapshotChunkBytes,
    maxSnapshotBytes: positiveInt(o.maxSnapshotBytes, 'maxSnapshotBytes', 1024 * 1024 * 1024),
    snapshotIdleTimeoutMs: timerMs(o.snapshotIdleTimeoutMs, 'snapshotIdleTimeoutMs', 30_000),
    heartbeatMs,
    readTimeoutMs,
  };
}

/**
 * The n-th reconnection delay (n from 0): `min(maxMs, initialMs * 2^n)`, with
 * "equal jitter" (a uniform value in its upper half), so that peers that lost
 * each other at once do not redial in lockstep.
 * @param random - a uniform value in [0, 1)
 */
export function backoffDelay(attempt: number, backoff: BackoffOptions, random: number): number {
  const exp = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + (random * exp) / 2);
}
