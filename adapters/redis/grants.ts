/**
 * The grant directory in Redis: a hash per grant (`<prefix>grantRecord:<grantId>`) and
 * three sorted sets of grant ids, scored by the record's expiry (epoch ms): every grant
 * (`<prefix>grantRecords`), one account's (`<prefix>grantsOfAccount:<accountId>`) and one
 * client's (`<prefix>grantsOfClient:<sha256(clientId)>`).
 *
 * Every key expires: the record at its expiry (PEXPIREAT), each index with its longest-lived
 * member. Writes touching several keys are Lua scripts. The record keeps the names of its
 * account and client index keys (fields `_a`, `_c`), so `remove` and a `put` that moves a
 * grant find them. An index member whose record is gone (expired, evicted) is dropped on
 * read: expired ones by score, vanished ones after checking their record again in a script.
 */
import type { Redis } from 'ioredis';
import { StoreError, type GrantDirectory, type GrantFilter, type GrantRecord } from '../contract.js';
import type { RedisKeys } from './keys.js';
import { define, DROP_STALE_MEMBERS, type Arg, type ScriptCall } from './scripts.js';

/**
 * KEYS[1] record, KEYS[2] all-grants index, KEYS[3] account index, KEYS[4] client index;
 * ARGV[1] grant id, ARGV[2] expiresAt (epoch ms), ARGV[3] now (epoch ms), ARGV[4..]
 * field/value pairs. Replaces the record, moves it out of indexes it no longer belongs to,
 * drops expired members and sets each index's TTL to its longest-lived member.
 */
const PUT = `
local oldAccount = redis.call('HGET', KEYS[1], '_a')
local oldClient = redis.call('HGET', KEYS[1], '_c')
if oldAccount and oldAccount ~= KEYS[3] then redis.call('ZREM', oldAccount, ARGV[1]) end
if oldClient and oldClient ~= KEYS[4] then redis.call('ZREM', oldClient, ARGV[1]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_a', KEYS[3], '_c', KEYS[4], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
for i = 2, 4 do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[3])
  local top = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', KEYS[i], string.format('%.0f', tonumber(top[2]))) end
end
return 1
`;

/** KEYS[1] record; ARGV[1] when (epoch ms). Sets lastUsedAt when the record exists and it moves forward. */
const TOUCH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'lastUsedAt'))
if current ~= nil and current >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1])
return 1
`;

/** KEYS[1] record, KEYS[2] all-grants index; ARGV[1] grant id. 1 removed, 0 missing. */
const REMOVE = `
local account = redis.call('HGET', KEYS[1], '_a')
local client = redis.call('HGET', KEYS[1], '_c')
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if account then redis.call('ZREM', account, ARGV[1]) end
if client then redis.call('ZREM', client, ARGV[1]) end
return removed
`;

function toRecord(fields: Record<string, string>): GrantRecord | undefined {
  const { grantId, accountId, clientId, createdAt, lastUsedAt } = fields;
  if (grantId === undefined) return undefined;
  if (
    accountId === undefined ||
    clientId === undefined ||
    !Number.isFinite(Number(createdAt)) ||
    (lastUsedAt !== undefined && !Number.isFinite(Number(lastUsedAt)))
  ) {
    throw new StoreError(`the stored grant "${grantId}" cannot be read`);
  }
  return {
    grantId,
    accountId,
    clientId,
    createdAt: Number(createdAt),
    ...(lastUsedAt === undefined ? {} : { lastUsedAt: Number(lastUsedAt) }),
  };
}

/** newest first; ties in code-unit order of the id, which matches SQLite's BINARY collation for BMP text */
function newestFirst(a: GrantRecord, b: GrantRecord): number {
  return b.createdAt - a.createdAt || (a.grantId < b.grantId ? -1 : a.grantId > b.grantId ? 1 : 0);
}

export class RedisGrantDirectory implements GrantDirectory {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #put: ScriptCall;
  readonly #touch: ScriptCall;
  readonly #remove: ScriptCall;
  readonly #unindex: ScriptCall;

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    this.#put = define(redis, 'mcpAuthzGrantPut', PUT, 4);
    this.#touch = define(redis, 'mcpAuthzGrantTouch', TOUCH, 1);
    this.#remove = define(redis, 'mcpAuthzGrantRemove', REMOVE, 2);
    this.#unindex = define(redis, 'mcpAuthzGrantUnindex', DROP_STALE_MEMBERS, 1);
  }

  async put(record: GrantRecord, expiresAt: number): Promise<void> {
    const fields: Arg[] = ['grantId', record.grantId, 'accountId', record.accountId, 'clientId', record.clientId, 'createdAt', record.createdAt];
    if (record.lastUsedAt !== undefined) fields.push('lastUsedAt', record.lastUsedAt);
    const k = this.#keys;
    await this.#put(
      k.grantRecord(record.grantId),
      k.grantIndex(),
      k.grantsOfAccount(record.accountId),
      k.grantsOfClient(record.clientId),
      record.grantId,
      Math.ceil(expiresAt),
      Date.now(),
      ...fields,
    );
  }

  async get(grantId: string): Promise<GrantRecord | undefined> {
    return toRecord(await this.#redis.hgetall(this.#keys.grantRecord(grantId)));
  }

  async list(filter: GrantFilter = {}): Promise<GrantRecord[]> {
    const { accountId, clientId } = filter;
    const index =
      accountId !== undefined ? this.#keys.grantsOfAccount(accountId) : clientId !== undefined ? this.#keys.grantsOfClient(clientId) : this.#keys.grantIndex();
    await this.#redis.zremrangebyscore(index, '-inf', Date.now());
    const members = await this.#redis.zrange(index, 0, -1);
    if (members.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const member of members) pipeline.hgetall(this.#keys.grantRecord(member));
    const replies = (await pipeline.exec()) ?? [];
    const records: GrantRecord[] = [];
    const vanished: string[] = [];
    replies.forEach(([err, fields], i) => {
      if (err) throw err;
      const record = toRecord(fields as Record<string, string>);
      if (record) records.push(record);
      else vanished.push(members[i]!);
    });
    // a record gone without its index member (e.g. evicted): the script re-checks before dropping it
    if (vanished.length > 0) await this.#unindex(index, this.#keys.grantRecordPrefix(), ...vanished);
    return records
      .filter((r) => (accountId === undefined || r.accountId === accountId) && (clientId === undefined || r.clientId === clientId))
      .sort(newestFirst);
  }

  async touch(grantId: string, at: number): Promise<void> {
    await this.#touch(this.#keys.grantRecord(grantId), Math.floor(at));
  }

  async remove(grantId: string): Promise<boolean> {
    const result = await this.#remove(this.#keys.grantRecord(grantId), this.#keys.grantIndex(), grantId);
    return result === 1;
  }
}
