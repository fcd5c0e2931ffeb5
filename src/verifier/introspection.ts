/**
 * RFC 7662 token introspection with HTTP Basic client authentication, for opaque tokens and
 * for JWTs while the revocation feed is stale. Answers are cached by a SHA-256 of the token
 * (the token itself is never kept) for `cacheTtl` seconds, never beyond the token's `exp`.
 */
import { z } from 'zod';
import { VerifierError } from './errors.js';
import type { FetchLike } from './types.js';
import { sha256Hex } from './util.js';

const IntrospectionSchema = z.looseObject({
  active: z.boolean(),
  scope: z.string().optional(),
  client_id: z.string().optional(),
  exp: z.number().optional(),
  iat: z.number().optional(),
  nbf: z.number().optional(),
  sub: z.string().optional(),
  aud: z.union([z.string(), z.array(z.string())]).optional(),
  iss: z.string().optional(),
  jti: z.string().optional(),
  token_type: z.string().optional(),
});

/** An introspection answer (RFC 7662 §2.2); members other than `active` only when active. */
export type IntrospectionResponse = z.infer<typeof IntrospectionSchema>;

export interface IntrospectorOptions {
  clientId: string;
  clientSecret: string;
  endpoint: () => Promise<string>;
  /** seconds */
  cacheTtl: number;
  fetch: FetchLike;
}

const MAX_ENTRIES = 10_000;
const TIMEOUT_MS = 5000;

/** `application/x-www-form-urlencoded` encoding of a client credential (RFC 6749 §2.3.1). */
const formEncode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');

export class Introspector {
  readonly #options: IntrospectorOptions;
  readonly #authorization: string;
  readonly #cache = new Map<string, { expiresAt: number; answer: Promise<IntrospectionResponse> }>();

  constructor(options: IntrospectorOptions) {
    this.#options = options;
    this.#authorization = `Basic ${btoa(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`)}`;
  }

  /** The AS's answer for `token`; rejects with ERR_AUTHZ_UNAVAILABLE when it cannot be had. */
  async introspect(token: string): Promise<IntrospectionResponse> {
    const key = await sha256Hex(token);
    const now = Date.now();
    const cached = this.#cache.get(key);
    if (cached && cached.expiresAt > now) return cached.answer;
    if (cached) this.#cache.delete(key);

    const answer = this.#ask(token);
    const entry = { expiresAt: now + this.#options.cacheTtl * 1000, answer };
    this.#cache.set(key, entry);
    if (this.#cache.size > MAX_ENTRIES) this.#evict(now);
    try {
      const result = await answer;
      if (typeof result.exp === 'number') entry.expiresAt = Math.min(entry.expiresAt, result.exp * 1000);
      return result;
    } catch (err) {
      if (this.#cache.get(key) === entry) this.#cache.delete(key);
      throw err;
    }
  }

  #evict(now: number): void {
    for (const [key, entry] of this.#cache) if (entry.expiresAt <= now) this.#cache.delete(key);
    // still full: drop the oldest entries (Map keeps insertion order)
    for (const key of this.#cache.keys()) {
      if (this.#cache.size <= MAX_ENTRIES * 0.9) break;
      this.#cache.delete(key);
    }
  }

  async #ask(token: string): Promise<IntrospectionResponse> {
    const endpoint = await this.#options.endpoint();
    let response: Response;
    try {
      response = await this.#options.fetch(endpoint, {
        method: 'POST',
        headers: { authorization: this.#authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        redirect: 'manual',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (cause) {
      throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', { message: 'the introspection endpoint is unreachable', cause });
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', {
        message: `the introspection endpoint answered HTTP ${response.status}${response.status === 401 ? ' (check the introspection client credentials)' : ''}`,
      });
    }
    const parsed = IntrospectionSchema.safeParse(await response.json().catch(() => undefined));
    if (!parsed.success) throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', { message: 'the introspection endpoint sent an invalid answer' });
    return parsed.data;
  }
}
