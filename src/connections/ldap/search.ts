/**
 * The two searches of a sign-in, made as the service account: the one entry a username
 * names under `userBase` (none, or more than one, is no match), and the groups of that
 * entry — found by `groups.filter` under `groups.base` (or, `nested`, by Active Directory's
 * in-chain rule), plus the entry's own `memberOf` when the directory keeps it. Each group
 * counts by its DN and by its `nameAttribute`, so `roles.groups` may name either.
 */
import type { Client, Entry } from 'ldapts';
import type { LdapConnectionConfig } from '../../config/sign-in.js';
import { BINARY_ATTRIBUTES, first, personAttributes, rdnValue, values } from './entry.js';
import { fillFilter, NESTED_GROUPS_FILTER } from './filter.js';

export type PersonSearch = { entry: Entry } | { none: 'not_found' | 'ambiguous' };

/** The entry `username` names: exactly one under `userBase`, else why not. */
export async function findPerson(client: Client, config: LdapConnectionConfig, username: string): Promise<PersonSearch> {
  const { searchEntries } = await client.search(config.userBase, {
    scope: 'sub',
    filter: fillFilter(config.userFilter, { username }),
    attributes: personAttributes(config),
    explicitBufferAttributes: BINARY_ATTRIBUTES,
    // two are enough to know it is not one
    sizeLimit: 2,
    timeLimit: Math.ceil(config.timeout / 1000),
    derefAliases: 'never',
  });
  if (searchEntries.length === 0) return { none: 'not_found' };
  if (searchEntries.length > 1) return { none: 'ambiguous' };
  return { entry: searchEntries[0]! };
}

/** The groups of the person `entry` is: DNs and names, from the group search and `memberOf`. */
export async function groupsOf(client: Client, config: LdapConnectionConfig, entry: Entry, username: string): Promise<string[]> {
  const found = new Set<string>();
  const nameAttribute = config.groups?.nameAttribute ?? 'cn';
  for (const dn of values(entry, 'memberOf')) {
    found.add(dn);
    const name = rdnValue(dn, nameAttribute);
    if (name) found.add(name);
  }
  if (config.groups) {
    const template = config.groups.nested ? NESTED_GROUPS_FILTER : config.groups.filter;
    const { searchEntries } = await client.search(config.groups.base, {
      scope: 'sub',
      // {username}: the entry's own (memberUid holds the uid, whatever the person typed to sign in)
      filter: fillFilter(template, { dn: entry.dn, username: first(entry, config.attributes.username) ?? username }),
      attributes: [nameAttribute],
      sizeLimit: 1000,
      timeLimit: Math.ceil(config.timeout / 1000),
      derefAliases: 'never',
    });
    for (const group of searchEntries) {
      found.add(group.dn);
      for (const name of values(group, nameAttribute)) found.add(name);
    }
  }
  return [...found];
}
