/**
 * oidc-provider's findAccount over our local accounts. The `sub` is the account's random
 * id, never its username, so a removed and re-created username is a different subject.
 */
import type { FindAccount } from 'oidc-provider';
import type { Store } from '../../adapters/contract.js';

export function findAccount(store: Store): FindAccount {
  return async (_ctx, sub) => {
    const account = await store.accounts.findById(sub);
    if (!account) return undefined;
    return {
      accountId: account.id,
      claims: async () => ({ sub: account.id, preferred_username: account.username }),
    };
  };
}
