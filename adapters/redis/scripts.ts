/**
 * Lua scripts: every multi-key or check-then-write operation runs as one script, which
 * Redis executes atomically. That is what makes `consume` exactly-once across replicas,
 * `settings.create` / `settings.replace` safe for convergence, and keeps secondary
 * indexes in step with their records.
 *
 * Some scripts touch keys read from a record (its old index keys); that is fine on a
 * standalone Redis (or a primary with replicas), which is what this store supports —
 * not Redis Cluster.
 *
 * Record layout (a hash): p = payload JSON, c = consumed (epoch seconds, absent until
 * consumed), g = the grant set key (absent without grantId), x = JSON array of the
 * secondary index keys (uid / userCode) pointing at this record.
 */
import type { Redis } from 'ioredis';

/** Drops a record's secondary indexes and grant-set membership (not the record itself). */
const UNLINK_FN = `
local function unlink(key, keepGrant)
  local f = redis.call('HMGET', key, 'g', 'x')
  if f[2] then
    for _, k in ipairs(cjson.decode(f[2])) do
      if redis.call('GET', k) == key then redis.call('DEL', k) end
    end
  end
  if f[1] and f[1] ~= keepGrant then
    redis.call('SREM', f[1], key)
    if redis.call('SCARD', f[1]) == 0 then redis.call('DEL', f[1]) end
  end
end
`;

/**
 * KEYS[1] record, KEYS[2..] secondary index keys.
 * ARGV[1] payload JSON, ARGV[2] consumed ('' = not), ARGV[3] ttl ms (0 = never expires),
 * ARGV[4] grant set key ('' = none).
 * Index keys get the record's TTL; the grant set's TTL is only ever extended, so it
 * outlives its longest-lived member.
 */
const UPSERT = `${UNLINK_FN}
local key = KEYS[1]
local ttl = tonumber(ARGV[3])
local grant = ARGV[4]
unlink(key, grant)
redis.call('DEL', key)
local indexes = {}
for i = 2, #KEYS do indexes[#indexes + 1] = KEYS[i] end
local encoded = '[]'
if #indexes > 0 then encoded = cjson.encode(indexes) end
redis.call('HSET', key, 'p', ARGV[1], 'x', encoded)
if ARGV[2] ~= '' then redis.call('HSET', key, 'c', ARGV[2]) end
if grant ~= '' then redis.call('HSET', key, 'g', grant) end
if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
for _, k in ipairs(indexes) do
  if ttl > 0 then redis.call('SET', k, key, 'PX', ttl) else redis.call('SET', k, key) end
end
if grant ~= '' then
  local existed = redis.call('EXISTS', grant)
  redis.call('SADD', grant, key)
  if ttl == 0 then
    redis.call('PERSIST', grant)
  else
    local current = redis.call('PTTL', grant)
    if existed == 0 or (current >= 0 and current < ttl) then redis.call('PEXPIRE', grant, ttl) end
  end
end
return 1
`;

/** KEYS[1] record; ARGV[1] now (epoch seconds). 1 consumed now, 0 missing, -1 already consumed. */
const CONSUME = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'c') == 1 then return -1 end
redis.call('HSET', KEYS[1], 'c', ARGV[1])
return 1
`;

/** KEYS[1] record. */
const DESTROY = `${UNLINK_FN}
unlink(KEYS[1], nil)
return redis.call('DEL', KEYS[1])
`;

/** KEYS[1] grant set; ARGV[1] the model's record-key prefix (only that model's records go). */
const REVOKE_BY_GRANT = `
local grant = KEYS[1]
local prefix = ARGV[1]
local removed = 0
for _, m in ipairs(redis.call('SMEMBERS', grant)) do
  if string.sub(m, 1, #prefix) == prefix then
    local x = redis.call('HGET', m, 'x')
    if x then
      for _, k in ipairs(cjson.decode(x)) do
        if redis.call('GET', k) == m then redis.call('DEL', k) end
      end
    end
    removed = removed + redis.call('DEL', m)
    redis.call('SREM', grant, m)
  end
end
if redis.call('SCARD', grant) == 0 then redis.call('DEL', grant) end
return removed
`;

/**
 * KEYS[1] account, KEYS[2] account-id index, KEYS[3] username set.
 * ARGV: id, username, passwordHash, roles JSON, createdAt, updatedAt.
 * 1 created, 0 username taken, -1 id taken.
 */
const ACCOUNT_CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'username', ARGV[2], 'passwordHash', ARGV[3],
  'roles', ARGV[4], 'createdAt', ARGV[5], 'updatedAt', ARGV[6])
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

/** KEYS[1] account, KEYS[2] username set; ARGV[1] username, ARGV[2] account-id key prefix. */
const ACCOUNT_REMOVE = `
local id = redis.call('HGET', KEYS[1], 'id')
if not id then return 0 end
redis.call('DEL', KEYS[1])
local idKey = ARGV[2] .. id
if redis.call('GET', idKey) == ARGV[1] then redis.call('DEL', idKey) end
redis.call('SREM', KEYS[2], ARGV[1])
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

export type Arg = string | number;
export type ScriptCall = (...args: Arg[]) => Promise<unknown>;

/**
 * KEYS[1] a sorted-set index; ARGV[1] the record-key prefix, ARGV[2..] members. Drops the
 * members whose record is gone (expired or removed). Shared by the directories' indexes.
 */
export const DROP_STALE_MEMBERS = `
local dropped = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ARGV[i]) == 0 then dropped = dropped + redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return dropped
`;

/**
 * Registers a script on the client. ioredis then sends EVALSHA and falls back to EVAL
 * on NOSCRIPT, which is what happens after a Redis restart empties the script cache.
 */
export function define(redis: Redis, name: string, lua: string, numberOfKeys?: number): ScriptCall {
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

export class RedisScripts {
  readonly #upsert: ScriptCall;
  readonly #consume: ScriptCall;
  readonly #destroy: ScriptCall;
  readonly #revokeByGrant: ScriptCall;
  readonly #accountCreate: ScriptCall;
  readonly #accountUpdate: ScriptCall;
  readonly #accountRemove: ScriptCall;
  readonly #settingCreate: ScriptCall;
  readonly #settingReplace: ScriptCall;

  constructor(redis: Redis) {
    this.#upsert = define(redis, 'mcpAuthzUpsert', UPSERT);
    this.#consume = define(redis, 'mcpAuthzConsume', CONSUME, 1);
    this.#destroy = define(redis, 'mcpAuthzDestroy', DESTROY, 1);
    this.#revokeByGrant = define(redis, 'mcpAuthzRevokeByGrant', REVOKE_BY_GRANT, 1);
    this.#accountCreate = define(redis, 'mcpAuthzAccountCreate', ACCOUNT_CREATE, 3);
    this.#accountUpdate = define(redis, 'mcpAuthzAccountUpdate', ACCOUNT_UPDATE, 1);
    this.#accountRemove = define(redis, 'mcpAuthzAccountRemove', ACCOUNT_REMOVE, 2);
    this.#settingCreate = define(redis, 'mcpAuthzSettingCreate', SETTING_CREATE, 1);
    this.#settingReplace = define(redis, 'mcpAuthzSettingReplace', SETTING_REPLACE, 1);
  }

  upsert(
    record: string,
    indexKeys: string[],
    payload: string,
    consumed: number | undefined,
    ttlMs: number,
    grantKey: string | undefined,
  ): Promise<number> {
    const keys = [record, ...indexKeys];
    return asInteger(this.#upsert(keys.length, ...keys, payload, consumed ?? '', ttlMs, grantKey ?? ''));
  }

  consume(record: string, nowSeconds: number): Promise<number> {
    return asInteger(this.#consume(record, nowSeconds));
  }

  destroy(record: string): Promise<number> {
    return asInteger(this.#destroy(record));
  }

  revokeByGrant(grantKey: string, recordPrefix: string): Promise<number> {
    return asInteger(this.#revokeByGrant(grantKey, recordPrefix));
  }

  accountCreate(keys: [string, string, string], fields: [string, string, string, string, number, number]): Promise<number> {
    return asInteger(this.#accountCreate(...keys, ...fields));
  }

  accountUpdate(account: string, fieldValues: Arg[]): Promise<number> {
    return asInteger(this.#accountUpdate(account, ...fieldValues));
  }

  accountRemove(account: string, names: string, username: string, accountIdPrefix: string): Promise<number> {
    return asInteger(this.#accountRemove(account, names, username, accountIdPrefix));
  }

  settingCreate(setting: string, value: string): Promise<number> {
    return asInteger(this.#settingCreate(setting, value));
  }

  settingReplace(setting: string, expectedVersion: number, value: string): Promise<number> {
    return asInteger(this.#settingReplace(setting, expectedVersion, value));
  }
}
