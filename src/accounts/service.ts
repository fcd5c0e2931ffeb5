/**
 * Local accounts: creation, password checks and role changes on top of an
 * {@link AccountStore}. Inputs are validated here (see ./schema.ts); the store only
 * keeps records.
 *
 * Usernames are case-insensitive: lowercased on create and on every lookup.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { AccountRecord, AccountStore } from '../../adapters/contract.js';
import { AccountExistsError, AccountInputError, AccountNotFoundError } from './errors.js';
import { hashPassword, needsRehash, verifyPassword } from './password.js';
import { passwordSchema, rolesSchema, usernameSchema } from './schema.js';

export { AccountExistsError, AccountInputError, AccountNotFoundError };

export interface AccountService {
  /** Throws {@link AccountInputError} or {@link AccountExistsError}. */
  create(username: string, password: string, roles?: string[]): Promise<AccountRecord>;
  /**
   * The account when the username and password match, otherwise undefined; never throws
   * for bad input. Unknown users cost the same scrypt work as wrong passwords.
   */
  authenticate(username: string, password: string): Promise<AccountRecord | undefined>;
  /** Throws {@link AccountInputError} or {@link AccountNotFoundError}. */
  setPassword(username: string, password: string): Promise<void>;
  /** Replaces the roles. Throws {@link AccountInputError} or {@link AccountNotFoundError}. */
  setRoles(username: string, roles: string[]): Promise<void>;
  /** Throws {@link AccountInputError} or {@link AccountNotFoundError}. */
  remove(username: string): Promise<void>;
  /** All accounts, ordered by username. */
  list(): Promise<AccountRecord[]>;
  findById(id: string): Promise<AccountRecord | undefined>;
  /** Undefined for an unknown or invalid username. */
  findByUsername(username: string): Promise<AccountRecord | undefined>;
}

/**
 * A hash of a random password nobody knows, made with the current parameters: verifying
 * against it when the username is unknown makes that case take as long as a wrong
 * password. (A test checks it is still current when the parameters change.)
 */
export const DUMMY_HASH = 'scrypt$ln=17,r=8,p=1$YUwjZNOZr1_8sQRz4OP3Kw$29Knm-Rd_tdc0qO2scAUUcFElQ5qtY_xYUkGXBa0cMY';

export function createAccountService(store: AccountStore, now: () => number = Date.now): AccountService {
  return {
    async create(username, password, roles = []) {
      const name = parse(usernameSchema, username, 'username');
      const pw = parse(passwordSchema, password, 'password');
      const roleList = parse(rolesSchema, roles, 'roles');
      if (await store.findByUsername(name)) throw new AccountExistsError(name);
      const at = now();
      const record: AccountRecord = {
        id: randomUUID(),
        username: name,
        passwordHash: await hashPassword(pw),
        roles: roleList,
        createdAt: at,
        updatedAt: at,
      };
      await store.create(record); // throws AccountExistsError when a concurrent create won
      return record;
    },

    async authenticate(username, password) {
      const name = usernameSchema.safeParse(username);
      const pw = passwordSchema.safeParse(password);
      const record = name.success ? await store.findByUsername(name.data) : undefined;
      // always one scrypt run, whichever half is wrong
      const candidate = pw.success ? pw.data : 'not-a-password';
      // an account a connection made has no password: it costs the same, and never matches
      const ok = await verifyPassword(candidate, record?.passwordHash || DUMMY_HASH);
      if (!record || !record.passwordHash || !pw.success || !ok) return undefined;
      if (needsRehash(record.passwordHash)) {
        // upgrade the stored hash to the current parameters while the password is at hand
        await store.update(record.username, { passwordHash: await hashPassword(pw.data) });
      }
      return record;
    },

    async setPassword(username, password) {
      const name = parse(usernameSchema, username, 'username');
      const pw = parse(passwordSchema, password, 'password');
      if (!(await store.update(name, { passwordHash: await hashPassword(pw) }))) throw new AccountNotFoundError(name);
    },

    async setRoles(username, roles) {
      const name = parse(usernameSchema, username, 'username');
      const roleList = parse(rolesSchema, roles, 'roles');
      if (!(await store.update(name, { roles: roleList }))) throw new AccountNotFoundError(name);
    },

    async remove(username) {
      const name = parse(usernameSchema, username, 'username');
      if (!(await store.remove(name))) throw new AccountNotFoundError(name);
    },

    list: () => store.list(),

    async findById(id) {
      if (typeof id !== 'string' || id === '') return undefined;
      return store.findById(id);
    },

    async findByUsername(username) {
      const name = usernameSchema.safeParse(username);
      return name.success ? store.findByUsername(name.data) : undefined;
    },
  };
}

/** Parses with `schema` or throws an {@link AccountInputError} naming the field and why. */
function parse<S extends z.ZodType>(schema: S, value: unknown, field: AccountInputError['field']): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const reasons = [...new Set(result.error.issues.map((issue) => issue.message))];
  throw new AccountInputError(field, reasons.join('; '));
}
