/**
 * Verified JWT access tokens, remembered. An MCP client sends the same access token with every
 * request of a session (an agent calling tools in a loop), so its signature and claims need
 * checking once: later requests with it cost a hash and a map lookup instead of an ECDSA
 * verification. Entries are keyed by a SHA-256 of the token (tokens are never kept) and live
 * until the token expires or `maxAge` passes, whichever is first, so a key withdrawn from the
 * authorization server's key set stops being trusted within `maxAge`. What can change while a
 * token is valid is not cached: revocation and the feed's freshness are checked on every
 * request, exactly as for a token seen the first time.
 *
 * Only where the runtime hashes synchronously (node:crypto); elsewhere nothing is cached.
 */
import type { JWTPayload } from 'jose';
import { nowSeconds, sha256Base64urlNow } from './util.js';

export interface TokenCacheOptions {
  /** most tokens remembered; the oldest is forgotten first */
  maxEntries: number;
  /** seconds a verified token is trusted without checking its signature again */
  maxAge: number;
  /** leeway for `exp`, as for verification */
  clockTolerance: number;
}

interface Entry {
  claims: JWTPayload;
  /** epoch seconds after which the entry is not used */
  until: number;
}

export class VerifiedTokens {
  readonly #entries = new Map<string, Entry>();
  readonly #options: TokenCacheOptions;

  constructor(options: TokenCacheOptions) {
    this.#options = options;
  }

  /** The verified claims of `token`, if it was verified and is still within its time. */
  get(token: string): JWTPayload | undefined {
    const key = sha256Base64urlNow(token);
    if (key === undefined) return undefined;
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (nowSeconds() > entry.until) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.claims;
  }

  /** Remembers `claims` as the verified claims of `token` (frozen: callers share them). */
  set(token: string, claims: JWTPayload): void {
    const key = sha256Base64urlNow(token);
    if (key === undefined || typeof claims.exp !== 'number') return;
    const until = Math.min(claims.exp + this.#options.clockTolerance, nowSeconds() + this.#options.maxAge);
    if (this.#entries.size >= this.#options.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { claims: Object.freeze(claims), until });
  }

  get size(): number {
    return this.#entries.size;
  }
}
