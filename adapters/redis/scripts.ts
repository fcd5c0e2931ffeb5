/**
 * Lua scripts: every check-then-write runs as one script, which Redis executes atomically.
 * That is what makes `consume` exactly-once across replicas and `settings.create` /
 * `settings.replace` safe for convergence.
 *
 * Redis Cluster: a script may only touch keys passed in KEYS, all in one hash slot. Every
 * script here gets its keys through KEYS and never builds one; most take a single key, and
 * the few that take several use keys sharing a hash tag (adapters/redis/keys.ts). Updates of
 * a record and of the indexes pointing at it (uid, userCode, grant set, directory indexes)
 * are separate single-key steps, ordered so a reader never misses a live record: indexes
 * are written before the record they index (or verified on read), and removed after it.
 *
 * Model record layout (a hash): p = payload JSON, c = consumed (epoch seconds, absent until
 * consumed), g = the grant set key (absent without grantId), x = JSON array of the pointer
 * keys (uid / userCode) naming this record. Those names are data the caller acts on, not
 * keys a script touches.
 */
import type { RedisClient } from './connection.js';

/**
 * KEYS[1] record. ARGV[1] payload JSON, ARGV[2] consumed ('' = not), ARGV[3] ttl ms
 * (0 = never expires), ARGV[4] grant set key ('' = none), ARGV[5] pointer keys JSON.
 * Replaces the record; returns what it replaced: { grant set key or '', pointer keys JSON }.
 */
const RECORD_PUT = `
local key = KEYS[1]
local old = redis.call('HMGET', key, 'g', 'x')
redis.call('DEL', key)
redis.call('HSET', key, 'p', ARGV[1], 'x', ARGV[5])
if ARGV[2] ~= '' then redis.call('HSET', key, 'c', ARGV[2]) end
if ARGV[4] ~= '' then redis.call('HSET', key, 'g', ARGV[4]) end
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
return {old[1] or '', old[2] or '[]'}
`;

/** KEYS[1] record. Deletes it; returns { 1 deleted / 0 missing, grant set key or '', pointer keys JSON }. */
const RECORD_DELETE = `
local old = redis.call('HMGET', KEYS[1], 'g', 'x')
local deleted = redis.call('DEL', KEYS[1])
return {deleted, old[1] or '', old[2] or '[]'}
`;

/** KEYS[1] record; ARGV[1] now (epoch seconds). 1 consumed now, 0 missing, -1 already consumed. */
const CONSUME = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'c') == 1 then return -1 end
redis.call('HSET', KEYS[1], 'c', ARGV[1])
return 1
`;

/**
 * KEYS[1] grant set; ARGV[1] member (a record key), ARGV[2] the member's ttl ms (0 = never).
 * The set's TTL is only ever extended, so it outlives its longest-lived member.
 */
const SET_ADD = `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl == 0 then
  redis.call('PERSIST', KEYS[1])
else
  local current = redis.call('PTTL', KEYS[1])
  if existed == 0 or (current >= 0 and current < ttl) then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return 1
`;

/** KEYS[1] set; ARGV members. Removes them, and the set once empty (atomically: a concurrent add is never lost). */
const SET_REMOVE = `
redis.call('SREM', KEYS[1], unpack(ARGV))
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return 1
`;

/** KEYS[1] a string; ARGV[1] expected value. Deletes the key only while it holds that value. */
const DELETE_IF_EQUAL = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS[1] account, KEYS[2] account-id index, KEYS[3] username set (one hash tag).
 * ARGV: id, username, passwordHash, roles JSON, createdAt, updatedAt, then optional field/value pairs.
 * 1 created, 0 username taken, -1 id taken.
 */
const ACCOUNT_CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'username', ARGV[2], 'passwordHash', ARGV[3],
  'roles', ARGV[4], 'createdAt', ARGV[5], 'updatedAt', ARGV[6])
if #ARGV > 6 then redis.call('HSET', KEYS[1], unpack(ARGV, 7)) end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
`;

/** KEYS[1] account; ARGV field/value pairs. 1 updated, 0 missing. */
const ACCOUNT_UPDATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`;

/**
 * KEYS[1] account, KEYS[2] its account-id index, KEYS[3] username set (one hash tag);
 * ARGV[1] username, ARGV[2] the account id the caller read (KEYS[2] is named after it).
 * 1 removed, 0 missing, -1 the account's id is no longer ARGV[2] (read again, retry).
 */
const ACCOUNT_REMOVE = `
local id = redis.call('HGET', KEYS[1], 'id')
if not id then return 0 end
if id ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('SREM', KEYS[3], ARGV[1])
return 1
`;

/** KEYS[1] setting; ARGV[1] value. 1 created, 0 already present. */
const SETTING_CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'version', '1')
return 1
`;

/** KEYS[1] setting; ARGV[1] expected version, ARGV[2] value. 1 replaced, 0 refused. */
const SETTING_REPLACE = `
local v = tonumber(redis.call('HGET', KEYS[1], 'version'))
if v == nil or v ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'version', string.format('%d', v + 1))
return 1
`;

/**
 * KEYS[1] a directory record (hash); ARGV[1] expiresAt (epoch ms, '' = never), ARGV[2..]
 * field/value pairs. Replaces the record.
 */
export const HASH_REPLACE = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return 1
`;

/**
 * KEYS[1] a sorted-set index scored by expiry (epoch ms, '+inf' = never); ARGV[1] member,
 * ARGV[2] score, ARGV[3] now (epoch ms). Adds the member, drops expired ones, and sets the
 * index's TTL to its longest-lived member (none while it holds a permanent one).
 */
export const INDEX_ADD = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then
  local last = tonumber(top[2])
  if last == nil or last == math.huge then
    redis.call('PERSIST', KEYS[1])
  else
    redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', last))
  end
end
return 1
`;

/**
 * KEYS[1] a sorted-set index; ARGV member/score pairs as read with the index. Drops each
 * member whose record was found gone, unless its score changed since (the record was put
 * again meanwhile). Shared by the directories' indexes.
 */
export const DROP_STALE_MEMBERS = `
local dropped = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then dropped = dropped + redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return dropped
`;

export type Arg = string | number;
export type ScriptCall = (...args: Arg[]) => Promise<unknown>;

/**
 * Registers a script on the client. ioredis then sends EVALSHA and falls back to EVAL
 * on NOSCRIPT, which is what happens after a Redis restart empties the script cache (in
 * Cluster mode, on whichever master holds the script's keys). Without `numberOfKeys`, each
 * call passes the number of keys first.
 */
export function define(redis: RedisClient, name: string, lua: string, numberOfKeys?: number): ScriptCall {
  redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua });
  const fn = (redis as unknown as Record<string, ScriptCall>)[name];
  if (typeof fn !== 'function') throw new Error(`ioredis did not define ${name}`);
  return (...args) => fn.apply(redis, args);
}

async function asInteger(reply: Promise<unknown>): Promise<number> {
  const value = await reply;
  if (typeof value !== 'number') throw new Error(`unexpected script reply ${typeof value}`);
  return value;
}

function pointerKeys(json: string): string[] {
  const parsed: unknown = JSON.parse(json);
  return Array.isArray(parsed) ? parsed.filter((k): k is string => typeof k === 'string') : [];
}

export interface Replaced {
  /** the grant set key of the record replaced or deleted, if it had one */
  grantKey: string | undefined;
  /** the pointer keys it recorded */
  pointers: string[];
}

export class RedisScripts {
  readonly #recordPut: ScriptCall;
  readonly #recordDelete: ScriptCall;
  readonly #consume: ScriptCall;
  readonly #setAdd: ScriptCall;
  readonly #setRemove: ScriptCall;
  readonly #deleteIfEqual: ScriptCall;
  readonly #accountCreate: ScriptCall;
  readonly #accountUpdate: ScriptCall;
  readonly #accountRemove: ScriptCall;
  readonly #settingCreate: ScriptCall;
  readonly #settingReplace: ScriptCall;

  constructor(redis: RedisClient) {
    this.#recordPut = define(redis, 'mcpAuthzRecordPut', RECORD_PUT, 1);
    this.#recordDelete = define(redis, 'mcpAuthzRecordDelete', RECORD_DELETE, 1);
    this.#consume = define(redis, 'mcpAuthzConsume', CONSUME, 1);
    this.#setAdd = define(redis, 'mcpAuthzSetAdd', SET_ADD, 1);
    this.#setRemove = define(redis, 'mcpAuthzSetRemove', SET_REMOVE, 1);
    this.#deleteIfEqual = define(redis, 'mcpAuthzDeleteIfEqual', DELETE_IF_EQUAL, 1);
    this.#accountCreate = define(redis, 'mcpAuthzAccountCreate', ACCOUNT_CREATE, 3);
    this.#accountUpdate = define(redis, 'mcpAuthzAccountUpdate', ACCOUNT_UPDATE, 1);
    this.#accountRemove = define(redis, 'mcpAuthzAccountRemove', ACCOUNT_REMOVE, 3);
    this.#settingCreate = define(redis, 'mcpAuthzSettingCreate', SETTING_CREATE, 1);
    this.#settingReplace = define(redis, 'mcpAuthzSettingReplace', SETTING_REPLACE, 1);
  }

  async recordPut(
    record: string,
    payload: string,
    consumed: number | undefined,
    ttlMs: number,
    grantKey: string | undefined,
    pointers: string[],
  ): Promise<Replaced> {
    const reply = await this.#recordPut(record, payload, consumed ?? '', ttlMs, grantKey ?? '', JSON.stringify(pointers));
    const [grant, oldPointers] = reply as [string, string];
    return { grantKey: grant === '' ? undefined : grant, pointers: pointerKeys(oldPointers) };
  }

  async recordDelete(record: string): Promise<Replaced & { deleted: boolean }> {
    const [deleted, grant, pointers] = (await this.#recordDelete(record)) as [number, string, string];
    return { deleted: deleted === 1, grantKey: grant === '' ? undefined : grant, pointers: pointerKeys(pointers) };
  }

  consume(record: string, nowSeconds: number): Promise<number> {
    return asInteger(this.#consume(record, nowSeconds));
  }

  setAdd(set: string, member: string, ttlMs: number): Promise<number> {
    return asInteger(this.#setAdd(set, member, ttlMs));
  }

  setRemove(set: string, members: string[]): Promise<number> {
    return members.length === 0 ? Promise.resolve(0) : asInteger(this.#setRemove(set, ...members));
  }

  deleteIfEqual(key: string, expected: string): Promise<number> {
    return asInteger(this.#deleteIfEqual(key, expected));
  }

  /** `optional`: further field/value pairs of the account hash. */
  accountCreate(keys: [string, string, string], fields: [string, string, string, string, number, number], optional: string[] = []): Promise<number> {
    return asInteger(this.#accountCreate(...keys, ...fields, ...optional));
  }

  accountUpdate(account: string, fieldValues: Arg[]): Promise<number> {
    return asInteger(this.#accountUpdate(account, ...fieldValues));
  }

  accountRemove(keys: [string, string, string], username: string, id: string): Promise<number> {
    return asInteger(this.#accountRemove(...keys, username, id));
  }

  settingCreate(setting: string, value: string): Promise<number> {
    return asInteger(this.#settingCreate(setting, value));
  }

  settingReplace(setting: string, expectedVersion: number, value: string): Promise<number> {
    return asInteger(this.#settingReplace(setting, expectedVersion, value));
  }
}
