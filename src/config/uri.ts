/**
 * Canonical forms of resource URIs (RFC 8707 / MCP "canonical server URI"):
 * lowercase scheme and host, default port dropped, no fragment, and no lone trailing
 * slash on a path (a bare origin is written without a slash).
 */
export function canonicalResourceUri(value: string): string {
  const url = new URL(value);
  url.hash = '';
  let out = `${url.protocol}//${url.host}${url.pathname}${url.search}`;
  if (url.pathname === '/' && !url.search) out = `${url.protocol}//${url.host}`;
  else if (url.pathname.length > 1 && url.pathname.endsWith('/') && !url.search) out = out.slice(0, -1);
  return out;
}

/** Like {@link canonicalResourceUri}, but undefined for a value that is not an absolute URL. */
export function tryCanonicalResourceUri(value: string): string | undefined {
  return URL.canParse(value) ? canonicalResourceUri(value) : undefined;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK.has(hostname.toLowerCase()) || /^127(\.\d{1,3}){3}$/.test(hostname);
}
