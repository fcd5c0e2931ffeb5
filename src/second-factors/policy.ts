/**
 * When a second factor is asked for, and how a sign-in says it had one.
 *
 * `amr` (RFC 8176) values that count as a second factor: `otp` (a TOTP or recovery code),
 * `hwk` (a passkey, a key held in hardware), `mfa` (an upstream that says so). The session's
 * `acr` is {@link ACR_MFA} when the amr has one of them, otherwise {@link ACR_ONE_FACTOR}; both
 * reach ID tokens and JWT access tokens.
 */
import type { AccountRecord } from '../../adapters/contract.js';
import type { SecondFactorConfig } from '../config/sign-in.js';

export const ACR_MFA = 'urn:mcp-authz:acr:mfa';
export const ACR_ONE_FACTOR = 'urn:mcp-authz:acr:pwd';

const SECOND_FACTOR_AMR = new Set(['otp', 'hwk', 'mfa', 'sms', 'swk']);

export function hasSecondFactorAmr(amr: unknown): boolean {
  return Array.isArray(amr) && amr.some((m) => typeof m === 'string' && SECOND_FACTOR_AMR.has(m));
}

export function acrFor(amr: readonly string[]): string {
  return hasSecondFactorAmr(amr) ? ACR_MFA : ACR_ONE_FACTOR;
}

/** The amr after a second factor of `kind`: the first factor's methods, the factor's, and `mfa`. */
export function withSecondFactor(amr: readonly string[], kind: 'otp' | 'hwk'): string[] {
  return [...new Set([...amr, kind, 'mfa'])];
}

/** The authorization request's `acr_values` name {@link ACR_MFA}: the client asks for a second factor. */
export function asksForMfa(acrValues: unknown): boolean {
  return typeof acrValues === 'string' && acrValues.split(' ').includes(ACR_MFA);
}

/**
 * Whether this sign-in needs a second factor, whether or not one is enrolled: the person's
 * role or the client is in the policy, or the request's `acr_values` asks for {@link ACR_MFA}.
 * Asked at sign-in (src/second-factors/sign-in-step.ts) and at every authorization request of
 * a session without one (src/provider/consent-policy.ts), so it holds for sessions too.
 */
export function policyRequires(config: SecondFactorConfig, account: Pick<AccountRecord, 'roles'>, params: { client_id?: unknown; acr_values?: unknown }): boolean {
  if (account.roles.some((role) => config.requireForRoles.includes(role))) return true;
  if (asksForMfa(params.acr_values)) return true;
  return typeof params.client_id === 'string' && config.requireForClients.includes(params.client_id);
}
