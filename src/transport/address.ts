/**
 * Peer addresses of {@link TcpTransport}: `"host:port"`, with IPv6 hosts in
 * brackets (`"[::1]:2380"`).
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ErrorCode, UsageError } from '../errors.js';
import { describeValue } from '../arg-values.js';

/** A parsed `"host:port"`. */
export interface HostPort {
  /** Host name or IP address; an IPv6 address without its brackets. */
  host: string;
  /** TCP port, 1..65535. */
  port: number;
}

/**
 * A host name: letters, digits, `-`, `_` and dots (ASCII; an internationalized
 * name in its `xn--` form), at most 253 characters, and an optional final dot.
 */
const HOST_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;

/**
 * Parses `"host:port"` (IPv6 as `"[addr]:port"`), port 1..65535. The host is
 * an IPv4 address, a host name (see {@link HOST_NAME}), or, in brackets
 * only, an IPv6 address (a zone, as in `"[fe80::1%eth0]:2380"`, allowed).
 * Anything else, such as a host with a space (`" 10.0.0.2:2380"`, left by
 * splitting a list on commas) or a URL, is refused here rather than failing
 * every dial.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when malformed
 */
export function parseAddress(address: string): HostPort {
  const bad = (): never => {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `peer address must be "host:port" or "[ipv6]:port", got ${typeof address === 'string' ? JSON.stringify(address) : describeValue(address)}`);
  };
  if (typeof address !== 'string') return bad();
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return bad();
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (host.startsWith('[')) {
    if (!host.endsWith(']') || host.length < 3) return bad();
    host = host.slice(1, -1);
    if (!isIPv6(host)) return bad();
  } else if (!isIPv4(host) && (host.length > 254 || !HOST_NAME.test(host))) {
    return bad();
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return bad();
  const port = Number(portText);
  if (port < 1 || port > 65535 || host === '') return bad();
  return { host, port };
}

/** Formats a host and port as {@link parseAddress} reads them. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
