/**
 * Peer addresses of {@link TcpTransport}: `"host:port"`, with IPv6 hosts in
 * brackets (`"[::1]:2380"`).
 * @module
 */
import { ErrorCode, UsageError } from '../errors.js';

/** A parsed `"host:port"`. */
export interface HostPort {
  /** Host name or IP address; an IPv6 address without its brackets. */
  host: string;
  /** TCP port, 1..65535. */
  port: number;
}

/**
 * Parses `"host:port"` (IPv6 as `"[addr]:port"`), port 1..65535.
 * @throws UsageError `QUORUMKV_INVALID_ARGUMENT` when malformed
 */
export function parseAddress(address: string): HostPort {
  const bad = (): never => {
    throw new UsageError(ErrorCode.INVALID_ARGUMENT, `peer address must be "host:port" or "[ipv6]:port", got ${JSON.stringify(address)}`);
  };
  if (typeof address !== 'string') return bad();
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return bad();
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (host.startsWith('[')) {
    if (!host.endsWith(']') || host.length < 3) return bad();
    host = host.slice(1, -1);
  } else if (host.includes(':')) {
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
