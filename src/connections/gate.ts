/**
 * Accounts of connections, kept honest while in use: the engine asks before it uses an
 * account (src/provider/accounts.ts). An account whose connection is disabled or no longer
 * configured is refused everywhere; at a refresh, a connection that can ask its upstream
 * (LDAP and OIDC `checkOnRefresh`) is asked whether the person is still there — if not, the
 * refresh is refused and every grant of theirs revoked, published on the revocation feed. When
 * it cannot be asked, the refresh answers `503 temporarily_unavailable` and nothing is revoked.
 *
 * And at start, the grants of every account of a disabled connection are revoked.
 */
import { errors } from 'oidc-provider';
import type { AccountRecord, Store } from '../../adapters/contract.js';
import type { AuditLog } from '../audit/events.js';
import type { Logger } from '../observability/logger.js';
import type { AccountGate } from '../provider/accounts.js';
import type { RevocationPublisher } from '../revocation/publisher.js';
import { revokeAllForAccount } from '../grants/revoke.js';
import type { ConnectionRegistry } from './registry.js';

export interface GateDeps {
  registry: ConnectionRegistry;
  store: Store;
  publisher: RevocationPublisher;
  audit: AuditLog;
  log: Logger;
}

/** A refresh while the connection cannot be asked: `503 temporarily_unavailable`, never `invalid_grant`. */
export class UpstreamUnavailable extends errors.TemporarilyUnavailable {
  constructor(name: string) {
    super(`${name} cannot be reached to confirm the account; try again shortly`);
    this.status = 503;
    this.statusCode = 503;
  }
}

export function connectionGate(deps: GateDeps): AccountGate {
  const { registry } = deps;
  return async (account, token) => {
    if (account.connection === undefined) return true;
    const driver = registry.get(account.connection);
    if (!driver || !driver.config.enabled) return false;
    if (token?.kind !== 'RefreshToken' || !driver.stillActive) return true;
    let active: boolean;
    try {
      active = await driver.stillActive(account);
    } catch (err) {
      // the upstream cannot be asked: the refresh fails for now (503, the client keeps its
      // refresh token) and nothing is revoked
      const e = err as Error;
      deps.log.warn({ event: 'connection.check_failed', connection: driver.config.id, accountId: account.id, err: { name: e?.name, message: e?.message } }, 'could not ask the connection whether a person is still there');
      throw new UpstreamUnavailable(driver.config.name);
    }
    if (active) return true;
    await deprovision(deps, account, 'gone_upstream');
    return false;
  };
}

/** Revokes the grants of every account of each disabled connection; run at start. */
export async function revokeDisabledConnections(deps: GateDeps, connections: readonly { id: string; enabled: boolean }[]): Promise<void> {
  const disabled = new Set(connections.filter((c) => !c.enabled).map((c) => c.id));
  if (disabled.size === 0) return;
  const accounts = (await deps.store.accounts.list()).filter((a) => a.connection !== undefined && disabled.has(a.connection));
  for (const id of disabled) {
    const of = accounts.filter((a) => a.connection === id);
    let revoked = 0;
    for (const account of of) revoked += await deprovision(deps, account, 'connection_disabled');
    if (revoked > 0) {
      deps.audit.record({ event: 'connection.disabled', outcome: 'success', actor: 'server', details: { connection: id, accounts: of.length, grantsRevoked: revoked } });
      deps.log.info({ event: 'connection.disabled', connection: id, grantsRevoked: revoked }, 'revoked the grants of a disabled connection');
    }
  }
}

/** Revokes every grant of the account (and its access tokens, by subject); returns how many grants. */
async function deprovision(deps: GateDeps, account: AccountRecord, reason: string): Promise<number> {
  const grants = await deps.store.grants.list({ accountId: account.id });
  if (grants.length === 0 && reason === 'connection_disabled') return 0;
  const revoked = await revokeAllForAccount(deps.store, deps.publisher, account.id);
  deps.audit.record({
    event: 'account.deprovisioned',
    outcome: 'success',
    actor: 'server',
    details: { accountId: account.id, connection: account.connection ?? '', reason, grantsRevoked: revoked.length },
  });
  deps.log.info({ event: 'account.deprovisioned', accountId: account.id, connection: account.connection, reason, grantsRevoked: revoked.length }, 'account deprovisioned');
  return revoked.length;
}
