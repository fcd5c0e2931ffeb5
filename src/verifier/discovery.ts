/**
 * Authorization server metadata (RFC 8414, then OpenID Connect discovery), fetched once and
 * cached. The document's `issuer` must equal the configured issuer byte for byte (RFC 8414
 * §3.3), otherwise it is not used.
 */
import { z } from 'zod';
import { VerifierError } from './errors.js';
import type { FetchLike } from './types.js';
import { wellKnownUrl } from './uri.js';
import { unrefTimer } from './util.js';

const url = z.string().refine((value) => URL.canParse(value), 'must be an absolute URL');

const MetadataSchema = z.looseObject({
  issuer: z.string(),
  jwks_uri: url.optional(),
  introspection_endpoint: url.optional(),
  revocation_feed_endpoint: url.optional(),
  tool_approvals_endpoint: url.optional(),
  tool_executions_endpoint: url.optional(),
});

/** The fields of the authorization server metadata the verifier uses. */
export type AuthorizationServerMetadata = z.infer<typeof MetadataSchema>;

/** How long a fetched document is used before it is fetched again. */
const METADATA_MAX_AGE_MS = 60 * 60 * 1000;
/** After a failed fetch, callers within this window get the same failure instead of a new fetch. */
const FAILURE_COOLDOWN_MS = 2000;
const TIMEOUT_MS = 5000;

/** Where the issuer's metadata may be, in the order tried. */
export function metadataCandidates(issuer: string): URL[] {
  const base = issuer.endsWith('/') ? issuer.slice(0, -1) : issuer;
  const candidates = [
    wellKnownUrl(issuer, 'oauth-authorization-server', { dropTrailingSlash: true }),
    new URL(`${base}/.well-known/openid-configuration`),
    wellKnownUrl(issuer, 'openid-configuration', { dropTrailingSlash: true }),
  ];
  return candidates.filter((candidate, i) => candidates.findIndex((other) => other.href === candidate.href) === i);
}

export class Discovery {
  readonly #issuer: string;
  readonly #fetch: FetchLike;
  readonly #candidates: URL[];
  #current: { at: number; value: Promise<AuthorizationServerMetadata> } | undefined;

  constructor(issuer: string, fetchImpl: FetchLike, metadataUrl?: string) {
    this.#issuer = issuer;
    this.#fetch = fetchImpl;
    this.#candidates = metadataUrl ? [new URL(metadataUrl)] : metadataCandidates(issuer);
  }

  /** The metadata; rejects with ERR_AUTHZ_UNAVAILABLE when it cannot be had. */
  get(): Promise<AuthorizationServerMetadata> {
    const now = Date.now();
    const current = this.#current;
    if (current && now - current.at < METADATA_MAX_AGE_MS) return current.value;
    const value = this.#load().then(
      (metadata) => metadata,
      (err: unknown) => {
        // keep using an older document when a refresh fails; retry after a short cooldown
        unrefTimer(
          setTimeout(() => {
            if (this.#current?.value === value) this.#current = current;
          }, FAILURE_COOLDOWN_MS),
        );
        if (current) return current.value;
        throw err;
      },
    );
    this.#current = { at: now, value };
    return value;
  }

  async #load(): Promise<AuthorizationServerMetadata> {
    const failures: string[] = [];
    for (const candidate of this.#candidates) {
      let response: Response;
      try {
        response = await this.#fetch(candidate.href, {
          headers: { accept: 'application/json' },
          redirect: 'manual',
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
      } catch (cause) {
        throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', { message: `authorization server metadata ${candidate.href} unreachable`, cause });
      }
      if (response.status !== 200) {
        failures.push(`${candidate.href}: HTTP ${response.status}`);
        await response.body?.cancel();
        continue;
      }
      const parsed = MetadataSchema.safeParse(await response.json().catch(() => undefined));
      if (!parsed.success) {
        throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', { message: `authorization server metadata ${candidate.href} is invalid: ${parsed.error.message}` });
      }
      if (parsed.data.issuer !== this.#issuer) {
        throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', {
          message: `authorization server metadata ${candidate.href} names issuer ${JSON.stringify(parsed.data.issuer)}, not the configured ${JSON.stringify(this.#issuer)}`,
        });
      }
      return parsed.data;
    }
    throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', { message: `no authorization server metadata (${failures.join('; ')})` });
  }
}
