/**
 * ES256 access tokens signed with node:crypto, synchronously, instead of through Web Crypto.
 *
 * oidc-provider signs with jose, which on Node is Web Crypto: every signature is a job handed
 * to libuv's thread pool and back, about 95 µs of a token request on one core where the
 * signature itself takes 25 µs (docs/performance.md). The engine's `ExternalSigningKey`
 * (feature `externalSigningSupport`, experimental-01) lets a key sign itself: the same P-256
 * key, the same JWS (IEEE P1363 signature, as RFC 7518 §3.4 wants), a quarter of the cost.
 * Only ES256 keys: an RSA signature (ID tokens) takes 250 µs and stays off the event loop.
 */
import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { ExternalSigningKey } from 'oidc-provider';
import type { JWK } from 'jose';

class NodeEs256Key extends ExternalSigningKey {
  readonly #private: KeyObject;
  readonly #public: KeyObject;

  constructor(jwk: JWK) {
    super();
    this.#private = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    this.#public = createPublicKey(this.#private);
    const self = this as unknown as { kid: string | undefined; alg: string };
    self.kid = jwk.kid;
    self.alg = 'ES256';
  }

  override keyObject(): KeyObject {
    return this.#public;
  }

  override sign(data: Uint8Array): Uint8Array {
    return sign('sha256', data, { key: this.#private, dsaEncoding: 'ieee-p1363' });
  }
}

/** The key set as the engine takes it: private ES256 keys sign with node:crypto, the rest as they are. */
export function engineSigningKeys(keys: readonly JWK[]): (JWK | ExternalSigningKey)[] {
  return keys.map((key) => (key.kty === 'EC' && key.alg === 'ES256' && key.crv === 'P-256' && typeof key.d === 'string' ? new NodeEs256Key(key) : key));
}
