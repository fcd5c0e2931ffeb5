/**
 * Canonical forms of resource URIs (RFC 8707 / MCP "canonical server URI"): the same rule
 * the verifier applies to a token's audience, so the server uses the verifier's own
 * (the server may import the verifier, never the other way round).
 */
import { domainToASCII } from 'node:url';

export { canonicalResourceUri, tryCanonicalResourceUri } from '../verifier/uri.js';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK.has(hostname.toLowerCase()) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * A host name as policy compares it and rate limits key it: lower case, an internationalised
 * name in its ASCII (punycode) form, without the trailing dot of a fully qualified name
 * (`evil.example.` is `evil.example`). IP literals come back lower-cased. Undefined for
 * what is not a host name (an empty label, a character no host name has), so callers refuse it.
 */
export function normalizeHostname(name: string): string | undefined {
  if (name.startsWith('[')) return /^\[[0-9a-f:.]+\]$/i.test(name) ? name.toLowerCase() : undefined;
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare === '' || bare.startsWith('.') || bare.includes('..') || bare.endsWith('.')) return undefined;
  const ascii = domainToASCII(bare);
  return ascii === '' ? undefined : ascii;
}

/** Whether an absolute URI carries userinfo (`https://user@host/…`, an empty one included). */
export function hasUserinfo(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value);
}
