/**
 * The directory username each account of an LDAP connection last signed in with, kept in the
 * store (so every replica has it) for as long as a grant can live. The refresh check looks
 * the person up by it: our username is made from theirs and may differ (lowercased,
 * characters we do not allow replaced — `José Ñúñez` is `jos-ez` here), so searching by ours
 * could miss a person who is still there. Without a record (signed in before this was kept,
 * or expired), our username is used.
 */
import type { Store } from '../../../adapters/contract.js';

const MODEL = 'LdapDirectoryName';

export class DirectoryNames {
  constructor(
    private readonly store: Store,
    private readonly connection: string,
    /** seconds a record is kept: the grant lifetime */
    private readonly ttl: number,
  ) {}

  async remember(accountId: string, username: string): Promise<void> {
    await this.store.model(MODEL).upsert(`${this.connection}:${accountId}`, { connection: this.connection, username } as never, this.ttl);
  }

  async recall(accountId: string): Promise<string | undefined> {
    const found = (await this.store.model(MODEL).find(`${this.connection}:${accountId}`)) as { username?: unknown } | undefined;
    return typeof found?.username === 'string' ? found.username : undefined;
  }
}
