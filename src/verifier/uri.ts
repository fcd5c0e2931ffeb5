/**
 * Resource and issuer URIs: the canonical form used to compare a token's audience with the
 * configured resource (RFC 8707 / MCP "canonical server URI"), and the RFC 8414 / RFC 9728
 * path-inserted well-known URLs.

 * The server's configuration uses these too (src/config/uri.ts re-exports them).
 */

/**
 * Lowercase scheme and host, default port dropped, no fragment, and no lone trailing slash
 * on a path (a bare origin is written without a slash).
 * @throws TypeError when `value` is not an absolute URL
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

/**
 * `https://h/.well-known/<name>/<path>` for `https://h/<path>` (RFC 8414 §3.1, RFC 9728 §3.1):
 * the well-known segment goes between the host and the path; a terminating slash of the
 * path is kept for resources (RFC 9728) and dropped for issuers (RFC 8414).
 */
export function wellKnownUrl(base: string, name: string, { dropTrailingSlash }: { dropTrailingSlash: boolean }): URL {
  const url = new URL(base);
  let path = url.pathname === '/' ? '' : url.pathname;
  if (dropTrailingSlash && path.endsWith('/')) path = path.slice(0, -1);
  return new URL(`/.well-known/${name}${path}`, url.origin);
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** Whether `url` is https, or http on a loopback host (development and tests). */
export function isSecureOrLoopback(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.test(url.hostname));
}
