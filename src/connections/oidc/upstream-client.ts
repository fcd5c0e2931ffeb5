/**
 * Our client at an upstream OpenID Provider: its discovery document, read when first needed
 * (so the server starts while the upstream is down) and kept for an hour; a failed discovery
 * is tried again at the next sign-in. Authenticates with a client secret
 * (`client_secret_basic`) or a private JWK (`private_key_jwt`). Plain http is allowed only for
 * a loopback issuer (the configuration refuses any other), as openid-client wants it said.
 * ID tokens' signatures are always checked against the upstream's JWKS.
 */
import * as client from 'openid-client';
import { importJWK, type JWK } from 'jose';
import type { OidcConnectionConfig } from '../../config/sign-in.js';
import type { Logger } from '../../observability/logger.js';
import { UpstreamError } from '../driver.js';

/** How long a discovery document is trusted before it is read again. */
const REDISCOVER_MS = 60 * 60 * 1000;
/** Seconds any request to the upstream may take. */
const TIMEOUT_SECONDS = 10;

/** The private JWK of `privateKey`, checked at start; the message names the setting, never the value. */
export function parsePrivateJwk(connectionId: string, text: string): JWK & { kid: string; alg: string } {
  let jwk: unknown;
  try {
    jwk = JSON.parse(text);
  } catch {
    throw new Error(`connections[${connectionId}].privateKey: not a JSON Web Key`);
  }
  const k = jwk as Record<string, unknown>;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk) || typeof k.kty !== 'string' || typeof k.d !== 'string') {
    throw new Error(`connections[${connectionId}].privateKey: not a private JSON Web Key (kty and d are required)`);
  }
  if (typeof k.kid !== 'string' || k.kid === '' || typeof k.alg !== 'string' || !/^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$/.test(k.alg)) {
    throw new Error(`connections[${connectionId}].privateKey: the key needs a "kid" and an asymmetric "alg" (RS256, PS256, ES256, EdDSA, …)`);
  }
  return jwk as JWK & { kid: string; alg: string };
}

export class UpstreamClient {
  readonly #connection: OidcConnectionConfig;
  readonly #log: Logger;
  readonly #privateJwk: (JWK & { kid: string; alg: string }) | undefined;
  #cached: { config: client.Configuration; at: number } | undefined;
  #inflight: Promise<client.Configuration> | undefined;

  constructor(connection: OidcConnectionConfig, log: Logger) {
    this.#connection = connection;
    this.#log = log;
    this.#privateJwk = connection.privateKey === undefined ? undefined : parsePrivateJwk(connection.id, connection.privateKey);
  }

  /** The issuer, and the authorization endpoint once discovered: where sign-ins are sent. */
  urls(): string[] {
    const endpoint = this.#cached?.config.serverMetadata().authorization_endpoint;
    return [this.#connection.issuer, ...(endpoint ? [endpoint] : [])];
  }

  /** The upstream's configuration; throws {@link UpstreamError} when it cannot be discovered. */
  async configuration(): Promise<client.Configuration> {
    const cached = this.#cached;
    if (cached && Date.now() - cached.at < REDISCOVER_MS) return cached.config;
    this.#inflight ??= this.#discover().finally(() => {
      this.#inflight = undefined;
    });
    try {
      const config = await this.#inflight;
      this.#cached = { config, at: Date.now() };
      return config;
    } catch (err) {
      // an upstream briefly unreachable keeps the document it had
      if (cached) return cached.config;
      throw err;
    }
  }

  async #discover(): Promise<client.Configuration> {
    const issuer = new URL(this.#connection.issuer);
    const auth = await this.#auth();
    try {
      return await client.discovery(issuer, this.#connection.clientId, undefined, auth, {
        timeout: TIMEOUT_SECONDS,
        // the ID token's signature is checked against the upstream's published keys, even though
        // it comes straight from the token endpoint (where TLS alone would do, OIDC Core 3.1.3.7)
        execute: [client.enableNonRepudiationChecks, ...(issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [])],
      });
    } catch (err) {
      this.#log.warn({ connection: this.#connection.id, issuer: this.#connection.issuer, reason: `discovery_failed: ${describe(err)}` }, 'the OpenID provider could not be discovered');
      throw new UpstreamError('discovery_failed', `${this.#connection.name} could not be reached. Try again in a moment.`);
    }
  }

  async #auth(): Promise<client.ClientAuth> {
    if (this.#connection.clientSecret !== undefined) return client.ClientSecretBasic(this.#connection.clientSecret);
    const jwk = this.#privateJwk!;
    const { kid, alg } = jwk;
    const key = await importJWK(jwk, alg);
    if (key instanceof Uint8Array || key.type !== 'private') throw new UpstreamError('private_key_unusable');
    return client.PrivateKeyJwt({ key, kid });
  }
}

/**
 * What the log may say of an error from openid-client: its name, code and message (which name
 * the failed check, never a token), the upstream's OAuth error code when it sent one, and the
 * network error's code (refused, TLS) under a failed fetch.
 */
export function describe(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown';
  const e = err as Error & { code?: unknown; error?: unknown; status?: unknown };
  const parts = [e.name];
  if (typeof e.code === 'string') parts.push(e.code);
  if (typeof e.error === 'string') parts.push(`error=${e.error.slice(0, 64)}`);
  if (typeof e.status === 'number') parts.push(`status=${e.status}`);
  parts.push(e.message.slice(0, 200));
  // fetch's own failure (refused, TLS, DNS) is in its cause's code
  const cause = (e as { cause?: unknown }).cause as { code?: unknown } | undefined;
  if (cause && typeof cause.code === 'string' && /^[A-Z0-9_]{1,64}$/.test(cause.code)) parts.push(`cause=${cause.code}`);
  return parts.join(' ');
}
