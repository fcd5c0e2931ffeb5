/**
 * oidc-provider's findAccount over our local accounts. The `sub` is the account's random
 * id, never its username, so a removed and re-created username is a different subject.
 */
import type { FindAccount } from 'oidc-provider';
import type { AccountRecord, Store } from '../../adapters/contract.js';
import type { Person } from './resources.js';

/** The person behind the account the engine holds (`ctx.oidc.account`), if it is one of ours. */
export function personOf(account: unknown): Person | undefined {
  const person = (account as { person?: Person } | undefined)?.person;
  return person && typeof person.username === 'string' && Array.isArray(person.roles) ? person : undefined;
}

/**
 * Whether an account may still be used, asked each time the engine loads it (sign-in
 * sessions, consent, token requests, refreshes — `token` is the token being used, if any):
 * accounts of a disabled or removed connection, or gone upstream, are refused
 * (src/connections/gate.ts).
 */
export type AccountGate = (account: AccountRecord, token: { kind?: string } | undefined) => Promise<boolean>;

export function findAccount(store: Store, gate?: AccountGate): FindAccount {
  return async (_ctx, sub, token) => {
    const account = await store.accounts.findById(sub);
    if (!account) return undefined;
    if (gate && !(await gate(account, token as { kind?: string } | undefined))) return undefined;
    return {
      accountId: account.id,
      // read by scope policy when tokens are issued (src/provider/configuration.ts)
      person: { username: account.username, roles: [...account.roles] },
      claims: async () => ({
        sub: account.id,
        preferred_username: account.username,
        ...(account.displayName ? { name: account.displayName } : {}),
      }),
    };
  };
}
