/**
 * The demo's one-time set-up link: how the first account is made without a password ever
 * being typed on a command line or written to a log. At start, while there is no account,
 * the server makes a random token and prints `<issuer>/setup?token=…` on its console (never
 * in the JSON log: the request log has no query strings). Whoever opens it chooses a
 * username and password; the token is then used up. It also ends when an account exists by
 * other means, after {@link SETUP_LINK_TTL_MS}, or when the server stops (it lives in this
 * process's memory only, as a hash).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SETUP_LINK_TTL_MS = 24 * 3600_000;

const hash = (token: string) => createHash('sha256').update(token, 'utf8').digest();

export class SetupLink {
  #hash: Buffer | undefined;
  #expiresAt = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A new token, replacing any earlier one. */
  issue(): string {
    const token = randomBytes(32).toString('base64url');
    this.#hash = hash(token);
    this.#expiresAt = this.#now() + SETUP_LINK_TTL_MS;
    return token;
  }

  /** Whether `token` is the live one (compared in constant time). */
  matches(token: unknown): boolean {
    if (typeof token !== 'string' || token.length === 0 || token.length > 100 || !this.#hash) return false;
    if (this.#now() > this.#expiresAt) {
      this.#hash = undefined;
      return false;
    }
    return timingSafeEqual(hash(token), this.#hash);
  }

  /** Uses the token up when it is the live one: true for exactly one caller. */
  take(token: unknown): boolean {
    if (!this.matches(token)) return false;
    this.#hash = undefined;
    return true;
  }

  /** Puts a taken token back (the account could not be made after all). */
  restore(token: string): void {
    this.#hash = hash(token);
  }

  /** Ends the link (an account exists now). */
  end(): void {
    this.#hash = undefined;
  }
}
