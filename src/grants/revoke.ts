/**
 * Revoking a grant as a person ("connected apps") or an operator (`mcp-authz grants revoke`)
 * asks for it: the Grant and every stored token of it go, so the token endpoint refuses its
 * refresh tokens and codes (`invalid_grant`) and introspection its access tokens; and a grant
 * revocation is published on the revocation feed, because its JWT access tokens are stored
 * nowhere and only verifiers following the feed can refuse them.
 *
 * Works on the store alone (no running provider), so the CLI uses it as the server does.
 */
import type { Store } from '../../adapters/contract.js';
import type { RevocationPublisher } from '../revocation/publisher.js';

/** Every model whose records may carry a grantId (those that do not are a cheap no-op). */
export const GRANT_BOUND_MODELS = [
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'ClientCredentials',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
] as const;

/**
 * Revokes one grant. Returns false when neither the directory nor oidc-provider knows it
 * (nothing was done, nothing published). The directory record goes last, so a call that
 * failed half-way (the store or the feed unreachable) can be repeated from the same list.
 */
export async function revokeGrant(store: Store, publisher: RevocationPublisher, grantId: string): Promise<boolean> {
  const [record, grant] = await Promise.all([store.grants.get(grantId), store.model('Grant').find(grantId)]);
  if (!record && !grant) return false;
  // the Grant first: a refresh racing this call cannot use it once it is gone, even if it stores a token after the sweep below
  await store.model('Grant').destroy(grantId);
  await Promise.all(GRANT_BOUND_MODELS.map((name) => store.model(name).revokeByGrantId(grantId)));
  await publisher.grant(grantId);
  await store.grants.remove(grantId);
  return true;
}

/**
 * "Sign out of all apps": revokes every grant of the account (those of the directory, and
 * `extraGrantIds`, e.g. those a browser session remembers, when they belong to the account),
 * then publishes a subject revocation, so every access token issued to the person until now
 * is refused by verifiers — grant or not. Returns the ids of the grants revoked.
 */
export async function revokeAllForAccount(store: Store, publisher: RevocationPublisher, accountId: string, extraGrantIds: readonly string[] = []): Promise<string[]> {
  const candidates = new Set((await store.grants.list({ accountId })).map((g) => g.grantId));
  for (const grantId of extraGrantIds) {
    if (candidates.has(grantId)) continue;
    const payload = await store.model('Grant').find(grantId);
    if (payload?.accountId === accountId) candidates.add(grantId);
  }
  const revoked: string[] = [];
  for (const grantId of candidates) if (await revokeGrant(store, publisher, grantId)) revoked.push(grantId);
  await publisher.subject(accountId);
  return revoked;
}
