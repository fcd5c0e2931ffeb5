/**
 * Roles from an upstream's groups: the connection's default roles plus those its
 * `roles.groups` map gives for each group the person is in. Group names and DNs are compared
 * without regard to case (LDAP DNs and AD group names are case-insensitive; so, in practice,
 * are OIDC group claims), and surrounding whitespace is ignored.
 */
import type { ConnectionConfig } from '../config/sign-in.js';

export function rolesFor(connection: ConnectionConfig, groups: readonly string[]): string[] {
  const mapped = new Map<string, string[]>();
  for (const [group, roles] of Object.entries(connection.roles.groups)) mapped.set(normalise(group), roles);
  const roles = new Set(connection.roles.default);
  for (const group of groups) for (const role of mapped.get(normalise(group)) ?? []) roles.add(role);
  return [...roles].slice(0, 32);
}

function normalise(group: string): string {
  return group.trim().toLowerCase().replace(/\s*,\s*/g, ',');
}
