/**
 * Canonical forms of resource URIs (RFC 8707 / MCP "canonical server URI"): the same rule
 * the verifier applies to a token's audience, so the server uses the verifier's own
 * (the server may import the verifier, never the other way round).
 */
export { canonicalResourceUri, tryCanonicalResourceUri } from '../verifier/uri.js';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK.has(hostname.toLowerCase()) || /^127(\.\d{1,3}){3}$/.test(hostname);
}
