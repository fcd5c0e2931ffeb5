/**
 * oidc-provider's findAccount over our local accounts. The `sub` is the account's random
 * id, never its username, so a removed and re-created username is a different subject.
 */
import type { FindAccount } from 'oidc-provider';
import type { Store } from '../../adapters/contract.js';
import type { Person } from './resources.js';

/** The person behind the account the engine holds (`ctx.oidc.account`), if it is one of ours. */
export function personOf(account: unknown): Person | undefined {
  const person = (account as { person?: Person } | undefined)?.person;
  return person && typeof person.username === 'string' && Array.isArray(person.roles) ? person : undefined;
}

export function findAccount(store: Store): FindAccount {
  return async (_ctx, sub) => {
    const account = await store.accounts.findById(sub);
    if (!account) return undefined;
    return {
      accountId: account.id,
      // read by scope policy when tokens are issued (src/provider/configuration.ts)
      person: { username: account.username, roles: [...account.roles] },
      claims: async () => ({ sub: account.id, preferred_username: account.username }),
    };
  };
}
