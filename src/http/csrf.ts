/**
 * CSRF protection for the server-rendered forms: OWASP "signed double-submit cookie".
 *
 * A random per-browser secret lives in an httpOnly cookie; each form carries
 * HMAC(key, secret + '\n' + purpose). An attacker on another site can neither read the
 * cookie nor compute the HMAC, and the purpose (e.g. `login:<interaction uid>`) binds a
 * token to one form so a token leaked from one page cannot be replayed on another.
 * Stateless: nothing is stored server-side.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type Koa from 'koa';

export interface CsrfOptions {
  /** HMAC key; at least 32 random bytes, stable across restarts and instances. */
  key: Buffer;
  /** Use the `__Host-` cookie name and the Secure flag (HTTPS deployments). */
  secureCookies: boolean;
}

export interface Csrf {
  /** The cookie name in use (exposed for tests and for clearing on logout). */
  readonly cookieName: string;
  /** Ensures the secret cookie exists and returns the token for `purpose`. */
  issue(ctx: Koa.Context, purpose: string): string;
  /** True only when `token` is the token for this browser's cookie and `purpose`. */
  verify(ctx: Koa.Context, purpose: string, token: unknown): boolean;
}

const SECRET_BYTES = 32;
/** 32 bytes base64url-encoded, no padding. */
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function createCsrf(options: CsrfOptions): Csrf {
  if (options.key.length < 32) throw new Error('CSRF key must be at least 32 bytes');
  const key = Buffer.from(options.key);
  const cookieName = options.secureCookies ? '__Host-mcp-authz.csrf' : 'mcp-authz.csrf';

  const sign = (secret: string, purpose: string): Buffer =>
    createHmac('sha256', key).update(`${secret}\n${purpose}`, 'utf8').digest();

  // A secret minted earlier in this same request (two forms on one page) is not yet in
  // the request's Cookie header, so remember it per context.
  const minted = new WeakMap<Koa.Context, string>();

  const readSecret = (ctx: Koa.Context): string | undefined => {
    const value = ctx.cookies.get(cookieName, { signed: false });
    return value !== undefined && SECRET_PATTERN.test(value) ? value : undefined;
  };

  return {
    cookieName,

    issue(ctx, purpose) {
      let secret = minted.get(ctx) ?? readSecret(ctx);
      if (secret === undefined) {
        secret = randomBytes(SECRET_BYTES).toString('base64url');
        ctx.cookies.set(cookieName, secret, {
          signed: false,
          httpOnly: true,
          sameSite: 'lax',
          path: '/',
          secure: options.secureCookies,
          overwrite: true,
        });
        minted.set(ctx, secret);
      }
      return sign(secret, purpose).toString('base64url');
    },

    verify(ctx, purpose, token) {
      if (typeof token !== 'string' || token.length === 0 || token.length > 128) return false;
      const secret = readSecret(ctx);
      if (secret === undefined) return false;
      const expected = sign(secret, purpose);
      const given = Buffer.from(token, 'base64url');
      // Reject non-canonical encodings so only the exact issued string matches.
      if (given.toString('base64url') !== token) return false;
      if (given.length !== expected.length) return false;
      return timingSafeEqual(given, expected);
    },
  };
}
