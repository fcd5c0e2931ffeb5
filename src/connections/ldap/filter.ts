/**
 * LDAP search filters built from a configured template and what a person typed, so that the
 * input is only ever a value: RFC 4515 §3 escaping of `*`, `(`, `)`, `\` and NUL (as `\2a`,
 * `\28`, `\29`, `\5c`, `\00`). Other characters, non-ASCII included, are sent as they are,
 * which RFC 4515 allows (UTF-8 in a value needs no escape), and which ldapts's filter parser
 * needs: it reads a `\xx` escape as one character, so an escaped UTF-8 byte sequence would
 * reach the directory as different octets.
 */

const SPECIAL: Record<string, string> = { '*': '\\2a', '(': '\\28', ')': '\\29', '\\': '\\5c', '\0': '\\00' };

/** `value` escaped for use as an assertion value in a filter string (RFC 4515). */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => SPECIAL[c]!);
}

/**
 * The template with each `{name}` replaced by its value, escaped. A placeholder the
 * template names but `values` lacks is left as it is (the configuration schema checks them).
 */
export function fillFilter(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-z]+)\}/g, (whole, name: string) => (Object.hasOwn(values, name) ? escapeFilterValue(values[name]!) : whole));
}

/** The filter of AD's LDAP_MATCHING_RULE_IN_CHAIN: the groups `dn` is a member of, directly or through other groups. */
export const NESTED_GROUPS_FILTER = '(member:1.2.840.113556.1.4.1941:={dn})';
