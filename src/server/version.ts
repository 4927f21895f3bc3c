/**
 * The version of this package, as `status().version` reports it (etcd's
 * `StatusResponse.version`, the server's version: here the library's, since
 * the library is the server).
 * @module
 */

/**
 * The semantic version of the quorumkv package this code belongs to, e.g.
 * `'0.1.0'`: the `version` field of its package.json (a test keeps the two
 * equal).
 */
export const VERSION = '0.1.0';
