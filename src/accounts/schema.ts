/**
 * Input rules for local accounts, shared by the account service and the `user` CLI
 * (which checks names before prompting for a password).
 *
 * Usernames are case-insensitive: they are lowercased on create and on every lookup, so
 * "Alice" and "alice" are one account and stores only ever see lowercase names.
 */
import { z } from 'zod';

export const USERNAME_PATTERN = /^[A-Za-z0-9._@-]{1,64}$/;
export const ROLE_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;
export const MAX_ROLES = 32;

/** A username as typed; parses to its lowercase, canonical form. */
export const usernameSchema = z
  .string()
  .regex(USERNAME_PATTERN, 'must be 1 to 64 characters: letters, digits, ".", "_", "@" or "-"')
  .transform((name) => name.toLowerCase());

export const roleSchema = z
  .string()
  .regex(ROLE_PATTERN, 'a role is a lowercase letter then up to 31 lowercase letters, digits, "_" or "-"');

/** Roles, without duplicates, in the order given. */
export const rolesSchema = z
  .array(roleSchema)
  .max(MAX_ROLES, `at most ${MAX_ROLES} roles`)
  .transform((roles) => [...new Set(roles)]);

/** Counted in characters (code points), not UTF-16 units, so emoji count as one. */
export const passwordSchema = z
  .string()
  .refine((pw) => characters(pw) >= PASSWORD_MIN, `must be at least ${PASSWORD_MIN} characters`)
  .refine((pw) => characters(pw) <= PASSWORD_MAX, `must be at most ${PASSWORD_MAX} characters`);

/** Code points in `text`; a huge input is cut short rather than walked through. */
function characters(text: string): number {
  // a code point is at most two UTF-16 units, so anything longer is over the limit anyway
  if (text.length > 2 * PASSWORD_MAX) return PASSWORD_MAX + 1;
  return Array.from(text).length;
}
