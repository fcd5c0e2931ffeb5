/**
 * The authorization server's signing keys: jose's `createRemoteJWKSet` over the configured
 * `jwksUri` or the metadata's `jwks_uri`, created on first use. jose caches the set (10 min)
 * and refetches on an unknown `kid` at most every 30 s (cooldown).
 */
import { createRemoteJWKSet, customFetch, errors, type JWTVerifyGetKey } from 'jose';
import type { Discovery } from './discovery.js';
import { VerifierError } from './errors.js';
import type { FetchLike } from './types.js';

export interface JwksOptions {
  jwksUri: string | undefined;
  fetch: FetchLike;
  discovery: Discovery;
}

/** A jose key resolver; key-set fetch failures become ERR_AUTHZ_UNAVAILABLE. */
export function remoteKeys({ jwksUri, fetch, discovery }: JwksOptions): JWTVerifyGetKey {
  let keySet: Promise<JWTVerifyGetKey> | undefined;

  const resolve = async (): Promise<JWTVerifyGetKey> => {
    const uri = jwksUri ?? (await discovery.get()).jwks_uri;
    if (!uri) throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', { message: 'the authorization server metadata has no jwks_uri' });
    return createRemoteJWKSet(new URL(uri), {
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
      timeoutDuration: 5000,
      [customFetch]: (url, init) => fetch(url, init),
    });
  };

  const classify = (err: unknown): never => {
    // discovery's own errors (e.g. a metadata issuer mismatch) already say what went wrong
    if (err instanceof VerifierError) throw err;
    // a key the set does not have (or cannot tell apart) is the token's fault
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err;
    throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', { message: 'the authorization server key set could not be fetched', cause: err });
  };
  /** set once the key set is known: then every call goes straight to it (the hot path) */
  let ready: JWTVerifyGetKey | undefined;

  return (header, token) => {
    if (ready) return (ready(header, token) as Promise<Awaited<ReturnType<JWTVerifyGetKey>>>).catch(classify);
    keySet ??= resolve().then(
      (keys) => (ready = keys),
      (err: unknown) => {
        keySet = undefined;
        throw err;
      },
    );
    return keySet.then((keys) => keys(header, token)).catch(classify);
  };
}
