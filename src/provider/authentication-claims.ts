/**
 * How the person behind an access token signed in, for the token itself (RFC 9068 §2.2.1):
 * `auth_time`, `acr` and `amr`, taken from what the token is being issued from (the
 * authorization code, the refresh token, the device code), which carry them from the session.
 * An `acr` missing there (a session from before second factors) is derived from the `amr`.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { acrFor } from '../second-factors/policy.js';

interface Authenticated {
  amr?: unknown;
  acr?: unknown;
  authTime?: unknown;
}

const SOURCES = ['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'] as const;

export function authenticationClaims(ctx: KoaContextWithOIDC | undefined): { amr?: string[]; acr?: string; auth_time?: number } {
  const entities = (ctx?.oidc?.entities ?? {}) as Record<string, Authenticated | undefined>;
  const source = SOURCES.map((name) => entities[name]).find((entity) => entity !== undefined);
  if (!source) return {};
  const amr = Array.isArray(source.amr) ? source.amr.filter((m): m is string => typeof m === 'string') : [];
  const acr = typeof source.acr === 'string' ? source.acr : acrFor(amr);
  return {
    ...(amr.length ? { amr } : {}),
    acr,
    ...(typeof source.authTime === 'number' ? { auth_time: source.authTime } : {}),
  };
}
