/**
 * Just-in-time provisioning: the account of ours that a person from a connection signs in
 * to, created on their first sign-in and brought up to date (roles, name, e-mail) on every
 * later one.
 *
 * An account a connection creates has a subject derived from the connection and the upstream
 * subject (sha256, so the same person always gets the same `sub`, and no two connections
 * share one) and no password. It is linked to an existing account of ours only by the
 * connection's explicit `link` rule (docs/enterprise.md):
 *   - `never` (default): a taken username refuses the sign-in;
 *   - `username`: the account of that username is this person;
 *   - `verified_email`: the account named by the e-mail address, only when the upstream says
 *     the address is verified. An unverified address never links.
 * Only a local account, or one of the same connection, is ever linked; never another
 * connection's. A linked account keeps the roles an operator gave it, and gets the
 * connection's roles added.
 */
import { createHash } from 'node:crypto';
import { AccountExistsError, type AccountRecord, type AccountStore } from '../../adapters/contract.js';
import { USERNAME_PATTERN } from '../accounts/schema.js';
import type { ConnectionConfig } from '../config/sign-in.js';
import type { UpstreamIdentity } from './identity.js';
import { rolesFor } from './roles.js';

export type Provisioned =
  | { account: AccountRecord; created: boolean; linked: boolean }
  | { refused: 'username_taken' | 'account_of_another_connection' };

/** The subject (account id) of the person `subject` of `connection`. */
export function accountIdFor(connectionId: string, subject: string): string {
  return createHash('sha256').update(`${connectionId}\n${subject}`).digest('base64url');
}

/** One of our usernames made from what the upstream gave: lowercase, our characters only, at most 64. */
export function usernameFor(connectionId: string, identity: UpstreamIdentity): string {
  const raw = identity.username ?? identity.email ?? identity.subject;
  const name = raw
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '') // accents dropped: "Zoë" is "zoe"
    .toLowerCase()
    .replace(/[^a-z0-9._@-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
  return USERNAME_PATTERN.test(name) ? name : `${connectionId}-${accountIdFor(connectionId, identity.subject).slice(0, 12).toLowerCase()}`;
}

export async function provisionAccount(
  accounts: AccountStore,
  connection: ConnectionConfig,
  identity: UpstreamIdentity,
  now: () => number = Date.now,
): Promise<Provisioned> {
  const id = accountIdFor(connection.id, identity.subject);
  const roles = rolesFor(connection, identity.groups);
  const profile = {
    ...(identity.displayName ? { displayName: identity.displayName.slice(0, 256) } : {}),
    ...(identity.email ? { email: identity.email.toLowerCase() } : {}),
  };

  const own = await accounts.findById(id);
  if (own) {
    await accounts.update(own.username, { roles, displayName: profile.displayName ?? '', email: profile.email ?? '' });
    return { account: { ...own, roles, ...profile }, created: false, linked: false };
  }

  const linked = await linkTarget(accounts, connection, identity);
  if (linked) {
    if (linked.connection !== undefined && linked.connection !== connection.id) return { refused: 'account_of_another_connection' };
    const merged = [...new Set([...linked.roles, ...roles])].slice(0, 32);
    await accounts.update(linked.username, { roles: merged });
    return { account: { ...linked, roles: merged }, created: false, linked: true };
  }

  const username = usernameFor(connection.id, identity);
  const at = now();
  const record: AccountRecord = {
    id,
    username,
    passwordHash: '', // no password: this person signs in through the connection only
    roles,
    createdAt: at,
    updatedAt: at,
    connection: connection.id,
    ...profile,
  };
  try {
    await accounts.create(record);
  } catch (err) {
    if (err instanceof AccountExistsError) return { refused: 'username_taken' };
    throw err;
  }
  return { account: record, created: true, linked: false };
}

/** The existing account the connection's `link` rule names for this person, if any. */
async function linkTarget(accounts: AccountStore, connection: ConnectionConfig, identity: UpstreamIdentity): Promise<AccountRecord | undefined> {
  switch (connection.link) {
    case 'never':
      return undefined;
    case 'username':
      return accounts.findByUsername(usernameFor(connection.id, identity));
    case 'verified_email': {
      if (!identity.emailVerified || !identity.email) return undefined;
      const email = identity.email.toLowerCase();
      return USERNAME_PATTERN.test(email) ? accounts.findByUsername(email) : undefined;
    }
  }
}
