/**
 * Response security headers for every response the server sends, error pages included:
 * a page's full set on everything but JSON, which gets the short set an API response needs.
 *
 * The CSP is strict on purpose: no inline script, style or event handler can run, so a
 * value that somehow escaped template auto-escaping still cannot execute. `form-action`
 * is 'self' by default; a page whose form POST ends in a redirect to a client's
 * redirect URI must add that origin via `allowFormAction`, because Chromium applies
 * form-action to redirects that follow a form submission.
 */
import type Koa from 'koa';

export interface SecurityHeadersOptions {
  /** Send Strict-Transport-Security (only meaningful when served over HTTPS). */
  hsts: boolean;
}

/** State key that pages use to widen `form-action` for one response. */
export interface FormActionState {
  formActionSources?: string[];
}

const PERMISSIONS_POLICY = [
  'accelerometer=()',
  'autoplay=()',
  'camera=()',
  'display-capture=()',
  'geolocation=()',
  'gyroscope=()',
  'magnetometer=()',
  'microphone=()',
  'payment=()',
  // passkeys (WebAuthn) on our own pages only
  'publickey-credentials-create=(self)',
  'publickey-credentials-get=(self)',
  'usb=()',
  'interest-cohort=()',
].join(', ');

/** A CSP source expression must not contain characters that could start a new directive or source. */
const SAFE_SOURCE = /^[A-Za-z0-9+.\-:/[\]]+$/;

/** Builds the CSP header value; exported so tests and callers can compare exactly. */
export function buildCsp(formActionSources: readonly string[] = []): string {
  const sources = ["'self'"];
  for (const source of formActionSources) {
    if (SAFE_SOURCE.test(source) && !sources.includes(source)) sources.push(source);
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    `form-action ${sources.join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** The policy of every page that widens nothing, built once. */
const DEFAULT_CSP = buildCsp();

/** The policy of a JSON response: nothing may load, nothing may frame it. */
export const JSON_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * Adds the CSP source needed to let a form submission end at `url`: the origin for
 * http(s) URLs, the bare scheme (`com.example.app:`) for custom schemes. Unparsable
 * values are ignored, so a caller can pass a client-supplied redirect URI as-is.
 */
export function allowFormAction(ctx: Koa.Context, url: string): void {
  const source = formActionSourceFor(url);
  if (!source) return;
  const state = ctx.state as FormActionState;
  const list = Array.isArray(state.formActionSources) ? state.formActionSources : [];
  if (!list.includes(source)) list.push(source);
  state.formActionSources = list;
}

/** The CSP source for a URL, or undefined when the URL cannot be parsed. */
export function formActionSourceFor(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') {
    return parsed.origin === 'null' ? undefined : parsed.origin;
  }
  // Custom schemes (native apps, RFC 8252): only the scheme can be expressed in CSP.
  return /^[a-z][a-z0-9+.-]*:$/i.test(parsed.protocol) ? parsed.protocol : undefined;
}

/**
 * Whether a response's Content-Type is `application/json` (any parameters, any case), as koa's
 * `response.is('json')` answers, without its media type parsing on every response. A `+json`
 * type (a JWKS, a problem document) is not: like a page, it gets the full set.
 */
export function isJson(contentType: unknown): boolean {
  // koa's response.get answers undefined for a header never set
  if (typeof contentType !== 'string') return false;
  // what koa and the engine set for every JSON answer
  if (contentType === 'application/json; charset=utf-8') return true;
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase() === 'application/json';
}

/**
 * Koa middleware setting the headers after the downstream ran, and also when it
 * threw (the error is re-thrown so koa's error handling still renders it; koa keeps
 * headers set via `err.headers`, so they are attached there too).
 */
export function securityHeaders(options: SecurityHeadersOptions): Koa.Middleware {
  const hsts: Record<string, string> = options.hsts ? { 'Strict-Transport-Security': 'max-age=31536000; includeSubDomains' } : {};
  // JSON (the OAuth endpoints, metadata, JWKS) is never rendered: it needs what the OWASP REST
  // guidance asks for, not a page's policy — a token response is a third smaller without it
  const forJson: Record<string, string> = {
    'Content-Security-Policy': JSON_CSP,
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    ...hsts,
  };
  const jsonPairs = Object.entries(forJson);
  const apply = (ctx: Koa.Context): Record<string, string> => {
    const state = ctx.state as FormActionState;
    const json = isJson(ctx.res.getHeader('Content-Type'));
    const headers: Record<string, string> = json
      ? forJson
      : {
          'Content-Security-Policy': Array.isArray(state.formActionSources) && state.formActionSources.length ? buildCsp(state.formActionSources) : DEFAULT_CSP,
          'X-Frame-Options': 'DENY',
          'X-Content-Type-Options': 'nosniff',
          'Referrer-Policy': 'no-referrer',
          'Cross-Origin-Opener-Policy': 'same-origin',
          'Permissions-Policy': PERMISSIONS_POLICY,
          ...hsts,
        };
    const res = ctx.res;
    if (!res.headersSent) {
      // straight to node's response: the values are strings of ours, so koa's `set` (which
      // normalises any value, building arrays on the way) has nothing to add on every answer
      for (const [name, value] of json ? jsonPairs : Object.entries(headers)) res.setHeader(name, value);
      res.removeHeader('X-Powered-By');
    }
    return headers;
  };

  const failed = (ctx: Koa.Context, err: unknown): never => {
    const headers = apply(ctx);
    // koa's default error handler resets headers and then copies `err.headers`.
    if (err !== null && typeof err === 'object') {
      const e = err as { headers?: Record<string, string> };
      try {
        e.headers = { ...(e.headers ?? {}), ...headers };
      } catch {
        // A frozen error object: nothing more we can do; koa will still answer.
      }
    }
    throw err;
  };

  // one promise a request, not an async frame around the rest of the chain
  return function securityHeadersMiddleware(ctx, next) {
    return next().then(
      () => void apply(ctx),
      (err: unknown) => failed(ctx, err),
    );
  };
}
