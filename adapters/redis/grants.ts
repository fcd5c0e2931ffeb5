/**
 * The grant directory in Redis: a hash per grant (`<prefix>grantRecord:<grantId>`) and
 * three sorted sets of grant ids, scored by the record's expiry (epoch ms): every grant
 * (`<prefix>grantRecords`), one account's (`<prefix>grantsOfAccount:<accountId>`) and one
 * client's (`<prefix>grantsOfClient:<sha256(clientId)>`).
 *
 * Every key expires: the record at its expiry (PEXPIREAT), each index with its longest-lived
 * member. The record keeps the names of its account and client index keys (fields `_a`,
 * `_c`), so `remove` and a `put` that moves a grant find them. An index member whose record
 * is gone (expired, evicted) is dropped on read: expired ones by score, vanished ones by a
 * script that keeps them if they were put again meanwhile.
 *
 * The record and the three indexes are separate keys (on a Cluster, in different slots),
 * each written by a single-key script: `put` writes the indexes first and the record second,
 * `remove` the other way round, so a live record is always listed.
 */
import { StoreError, type GrantDirectory, type GrantFilter, type GrantRecord } from '../contract.js';
import { hgetallEach, type RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import { define, DROP_STALE_MEMBERS, HASH_REPLACE, INDEX_ADD, type Arg, type ScriptCall } from './scripts.js';

/** KEYS[1] record; ARGV[1] when (epoch ms). Sets lastUsedAt when the record exists and it moves forward. */
const TOUCH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'lastUsedAt'))
if current ~= nil and current >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1])
return 1
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
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;
  readonly #replace: ScriptCall;
  readonly #index: ScriptCall;
  readonly #touch: ScriptCall;
  readonly #unindex: ScriptCall;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    this.#replace = define(redis, 'mcpAuthzHashReplace', HASH_REPLACE, 1);
    this.#index = define(redis, 'mcpAuthzIndexAdd', INDEX_ADD, 1);
    this.#touch = define(redis, 'mcpAuthzGrantTouch', TOUCH, 1);
    this.#unindex = define(redis, 'mcpAuthzDropStaleMembers', DROP_STALE_MEMBERS, 1);
  }

  async put(record: GrantRecord, expiresAt: number): Promise<void> {
    const fields: Arg[] = ['grantId', record.grantId, 'accountId', record.accountId, 'clientId', record.clientId, 'createdAt', record.createdAt];
    if (record.lastUsedAt !== undefined) fields.push('lastUsedAt', record.lastUsedAt);
    const k = this.#keys;
    const key = k.grantRecord(record.grantId);
    const [byAccount, byClient] = [k.grantsOfAccount(record.accountId), k.grantsOfClient(record.clientId)];
    const expiry = Math.ceil(expiresAt);
    const now = Date.now();
    const [oldAccount, oldClient] = await this.#redis.hmget(key, '_a', '_c');
    await Promise.all([k.grantIndex(), byAccount, byClient].map((index) => this.#index(index, record.grantId, expiry, now)));
    await this.#replace(key, expiry, '_a', byAccount, '_c', byClient, ...fields);
    // a grant moved to another account or client leaves the old one's index
    await Promise.all([
      oldAccount && oldAccount !== byAccount ? this.#redis.zrem(oldAccount, record.grantId) : undefined,
      oldClient && oldClient !== byClient ? this.#redis.zrem(oldClient, record.grantId) : undefined,
    ]);
  }

  async get(grantId: string): Promise<GrantRecord | undefined> {
    return toRecord(await this.#redis.hgetall(this.#keys.grantRecord(grantId)));
  }

  async list(filter: GrantFilter = {}): Promise<GrantRecord[]> {
    const { accountId, clientId } = filter;
    const index =
      accountId !== undefined ? this.#keys.grantsOfAccount(accountId) : clientId !== undefined ? this.#keys.grantsOfClient(clientId) : this.#keys.grantIndex();
    await this.#redis.zremrangebyscore(index, '-inf', Date.now());
    const scored = await this.#redis.zrange(index, 0, -1, 'WITHSCORES');
    const members = scored.filter((_, i) => i % 2 === 0);
    const replies = await hgetallEach(this.#redis, members.map((member) => this.#keys.grantRecord(member)));
    const records: GrantRecord[] = [];
    const vanished: string[] = [];
    replies.forEach((fields, i) => {
      const record = toRecord(fields);
      if (record) records.push(record);
      else vanished.push(scored[2 * i]!, scored[2 * i + 1]!);
    });
    // a record gone without its index member (e.g. evicted); the script keeps it if it was put again meanwhile
    if (vanished.length > 0) await this.#unindex(index, ...vanished);
    return records
      .filter((r) => (accountId === undefined || r.accountId === accountId) && (clientId === undefined || r.clientId === clientId))
      .sort(newestFirst);
  }

  async touch(grantId: string, at: number): Promise<void> {
    await this.#touch(this.#keys.grantRecord(grantId), Math.floor(at));
  }

  async remove(grantId: string): Promise<boolean> {
    const key = this.#keys.grantRecord(grantId);
    const [account, client] = await this.#redis.hmget(key, '_a', '_c');
    const removed = await this.#redis.del(key);
    await Promise.all([this.#keys.grantIndex(), account, client].map((index) => (index ? this.#redis.zrem(index, grantId) : undefined)));
    return removed === 1;
  }
}
