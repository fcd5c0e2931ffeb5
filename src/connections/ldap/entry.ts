/**
 * What we read of a person's directory entry: the attributes asked for, their values found
 * whatever the case the server names them in, and the stable identifier of the entry —
 * `entryUUID` (OpenLDAP and most directories, RFC 4530) or Active Directory's `objectGUID` —
 * so that a person whose DN changes (renamed, moved) keeps their account. Without either,
 * the DN, lowercased, is the identifier.
 */
import type { Entry } from 'ldapts';
import type { LdapConnectionConfig } from '../../config/sign-in.js';
import type { UpstreamIdentityInput } from '../identity.js';

/** Attributes asked for besides the configured ones. */
const STABLE_ID = ['entryUUID', 'objectGUID'];
const MEMBER_OF = 'memberOf';

/** What a person search asks for. */
export function personAttributes(config: LdapConnectionConfig): string[] {
  const { username, email, name } = config.attributes;
  return [...new Set([username, email, name, MEMBER_OF, ...STABLE_ID])];
}

/** Attributes read as bytes rather than text. */
export const BINARY_ATTRIBUTES = ['objectGUID'];

/** The values of attribute `name` (any case) as text; Buffers as UTF-8. */
export function values(entry: Entry, name: string): string[] {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(entry)) {
    if (key.toLowerCase() !== wanted || key === 'dn') continue;
    const list = Array.isArray(value) ? value : [value];
    return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v))).filter((v) => v !== '');
  }
  return [];
}

/** The first value of attribute `name`, if any. */
export function first(entry: Entry, name: string): string | undefined {
  return values(entry, name)[0];
}

/** AD's objectGUID (16 bytes, the first three fields little-endian) in its usual text form. */
export function guidText(bytes: Buffer): string {
  const hex = (from: number, to: number, reverse: boolean) => {
    const part = [...bytes.subarray(from, to)];
    return (reverse ? part.reverse() : part).map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`;
}

/** The DN as the subject when there is no stable identifier: lowercased, no spaces around separators. */
export function normaliseDn(dn: string): string {
  return dn.trim().toLowerCase().replace(/\s*([,=+])\s*/g, '$1');
}

/** The entry's stable identifier: `entryUUID`, `objectGUID`, else the normalised DN. */
export function subjectOf(entry: Entry): string {
  const uuid = first(entry, 'entryUUID');
  if (uuid && /^[0-9a-f-]{36}$/i.test(uuid)) return uuid.toLowerCase();
  for (const [key, value] of Object.entries(entry)) {
    if (key.toLowerCase() !== 'objectguid') continue;
    const bytes = Array.isArray(value) ? value[0] : value;
    if (Buffer.isBuffer(bytes) && bytes.length === 16) return guidText(bytes);
  }
  return normaliseDn(entry.dn);
}

/**
 * The value of the first RDN of `dn` when its attribute is `attribute` (`cn=Finance,ou=…`
 * → `Finance` for `cn`): how a `memberOf` DN gives the group's name. Escaped RDN values
 * (`\,`, `\2C`) are left out rather than guessed.
 */
export function rdnValue(dn: string, attribute: string): string | undefined {
  const match = /^\s*([A-Za-z][\w-]*)\s*=\s*([^,+\\]+?)\s*(?:,|$)/.exec(dn);
  return match && match[1]!.toLowerCase() === attribute.toLowerCase() ? match[2] : undefined;
}

/** The identity the person's entry and groups give. */
export function identityOf(config: LdapConnectionConfig, entry: Entry, groups: readonly string[]): UpstreamIdentityInput {
  const username = first(entry, config.attributes.username);
  const email = first(entry, config.attributes.email);
  const displayName = first(entry, config.attributes.name);
  return {
    subject: subjectOf(entry),
    ...(username ? { username: username.slice(0, 512) } : {}),
    ...(email && email.length <= 320 && email.includes('@') ? { email } : {}),
    ...(displayName ? { displayName: displayName.slice(0, 256) } : {}),
    // a directory does not say an address was verified; `link: verified_email` never links from LDAP
    emailVerified: false,
    groups: [...new Set(groups)].filter((g) => g.length <= 1024).slice(0, 1000),
    amr: ['pwd'],
  };
}
