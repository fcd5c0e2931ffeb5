/**
 * Local user accounts in Redis: a hash per username, an id → username index for
 * `findById`, and a set of usernames for `list`. Writes that touch several keys are Lua
 * scripts over keys sharing one hash tag, so a concurrent create of the same username cannot
 * half-succeed, on Redis Cluster too. These keys have no TTL: accounts are permanent until
 * removed.
 */
import { AccountExistsError, StoreError, type AccountPatch, type AccountRecord, type AccountStore } from '../contract.js';

/** Optional text fields, kept as hash fields; an empty value is absent. */
const OPTIONAL = ['connection', 'displayName', 'email', 'secondFactors'] as const;
import { hgetallEach, type RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import type { RedisScripts } from './scripts.js';

function toRecord(fields: Record<string, string>): AccountRecord | undefined {
  const { id, username, passwordHash, roles, createdAt, updatedAt } = fields;
  if (id === undefined || username === undefined) return undefined;
  let parsedRoles: unknown;
  try {
    parsedRoles = JSON.parse(roles ?? '');
  } catch {
    parsedRoles = undefined;
  }
  if (
    passwordHash === undefined ||
    !Array.isArray(parsedRoles) ||
    !parsedRoles.every((role) => typeof role === 'string') ||
    !Number.isFinite(Number(createdAt)) ||
    !Number.isFinite(Number(updatedAt))
  ) {
    throw new StoreError(`the stored account "${username}" cannot be read`);
  }
  const record: AccountRecord = { id, username, passwordHash, roles: parsedRoles, createdAt: Number(createdAt), updatedAt: Number(updatedAt) };
  for (const field of OPTIONAL) if (fields[field]) record[field] = fields[field];
  return record;
}

export class RedisAccountStore implements AccountStore {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts;

  constructor(redis: RedisClient, keys: RedisKeys, scripts: RedisScripts) {
    this.#redis = redis;
    this.#keys = keys;
    this.#scripts = scripts;
  }

  async create(record: AccountRecord): Promise<void> {
    const result = await this.#scripts.accountCreate(
      [this.#keys.account(record.username), this.#keys.accountId(record.id), this.#keys.accountNames()],
      [record.id, record.username, record.passwordHash, JSON.stringify(record.roles), record.createdAt, record.updatedAt],
      OPTIONAL.flatMap((field) => (record[field] ? [field, record[field]] : [])),
    );
    if (result === 0) throw new AccountExistsError(record.username);
    if (result === -1) throw new StoreError('an account with this id already exists');
  }

  async findByUsername(username: string): Promise<AccountRecord | undefined> {
    return toRecord(await this.#redis.hgetall(this.#keys.account(username)));
  }

  async findById(id: string): Promise<AccountRecord | undefined> {
    const username = await this.#redis.get(this.#keys.accountId(id));
    if (username === null) return undefined;
    const record = await this.findByUsername(username);
    return record?.id === id ? record : undefined;
  }

  async list(): Promise<AccountRecord[]> {
    // Code-unit order, which matches SQLite's default BINARY collation for BMP text.
    const usernames = (await this.#redis.smembers(this.#keys.accountNames())).sort((a, b) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    if (usernames.length === 0) return [];
    const records: AccountRecord[] = [];
    for (const fields of await hgetallEach(this.#redis, usernames.map((username) => this.#keys.account(username)))) {
      const record = toRecord(fields);
      if (record) records.push(record);
    }
    return records;
  }

  async update(username: string, patch: AccountPatch): Promise<boolean> {
    const fields: (string | number)[] = ['updatedAt', Date.now()];
    if (patch.passwordHash !== undefined) fields.push('passwordHash', patch.passwordHash);
    if (patch.roles !== undefined) fields.push('roles', JSON.stringify(patch.roles));
    for (const field of ['displayName', 'email', 'secondFactors'] as const) {
      if (patch[field] !== undefined) fields.push(field, patch[field]);
    }
    return (await this.#scripts.accountUpdate(this.#keys.account(username), fields)) === 1;
  }

  async remove(username: string): Promise<boolean> {
    const account = this.#keys.account(username);
    // the script must be given the id index key, named after the id: read the id, then
    // remove unless the account was replaced meanwhile (then read it again)
    for (let attempt = 0; attempt < 5; attempt++) {
      const id = await this.#redis.hget(account, 'id');
      if (id === null) return false;
      const result = await this.#scripts.accountRemove([account, this.#keys.accountId(id), this.#keys.accountNames()], username, id);
      if (result !== -1) return result === 1;
    }
    throw new StoreError(`the account "${username}" kept changing while being removed`);
  }
}
