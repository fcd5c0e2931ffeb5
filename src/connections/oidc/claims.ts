/**
 * The person an upstream OpenID Provider vouched for, read from its (checked) ID token and,
 * when asked, its userinfo answer, through the connection's `claims` names. Only well-formed
 * values are taken: a claim of the wrong type is as good as absent. The e-mail address counts
 * as verified only when `email_verified` is the boolean true, from the same answer as the
 * address, for the standard `email` claim.
 */
import type { OidcConnectionConfig } from '../../config/sign-in.js';
import type { UpstreamIdentity } from '../identity.js';

export type Claims = Record<string, unknown>;

/** A claim by name: the name as it is (`https://example.com/groups`), else a dotted path (`realm_access.roles`). */
export function claim(claims: Claims, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  if (!name.includes('.')) return undefined;
  let value: unknown = claims;
  for (const part of name.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Claims)[part];
  }
  return value;
}

/** True when a configured claim the identity needs is not in the ID token (so userinfo is worth asking). */
export function missingFromIdToken(connection: OidcConnectionConfig, idToken: Claims): boolean {
  const { username, email, name, groups } = connection.claims;
  return [username, email, name, groups].some((c) => claim(idToken, c) === undefined);
}

const text = (value: unknown, max: number): string | undefined => {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed.slice(0, max);
};

function groupsOf(value: unknown): string[] {
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  return list.filter((g): g is string => typeof g === 'string' && g.trim() !== '' && g.length <= 1024).slice(0, 1000);
}

/**
 * The identity from the ID token's claims and, if fetched, userinfo's (already checked to be
 * about the same `sub`). Userinfo's values win for profile claims; `sub` and `amr` are the ID
 * token's.
 */
export function identityFrom(connection: OidcConnectionConfig, idToken: Claims, userinfo?: Claims): UpstreamIdentity {
  const names = connection.claims;
  const pick = (name: string) => {
    const fromUserinfo = userinfo ? claim(userinfo, name) : undefined;
    return fromUserinfo !== undefined ? { value: fromUserinfo, source: userinfo! } : { value: claim(idToken, name), source: idToken };
  };
  const email = pick(names.email);
  const address = text(email.value, 320);
  const wellFormed = address !== undefined && address.length >= 3 && /^[^\s@]+@[^\s@]+$/.test(address);
  const amr = Array.isArray(idToken.amr) ? idToken.amr.filter((m): m is string => typeof m === 'string' && m.length > 0 && m.length <= 32).slice(0, 10) : [];
  const username = text(pick(names.username).value, 512);
  const displayName = text(pick(names.name).value, 256);
  return {
    subject: String(idToken.sub),
    ...(username ? { username } : {}),
    ...(wellFormed ? { email: address } : {}),
    emailVerified: wellFormed && names.email === 'email' && email.source.email_verified === true,
    ...(displayName ? { displayName } : {}),
    groups: groupsOf(pick(names.groups).value),
    amr,
  };
}
