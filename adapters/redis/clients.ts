/**
 * The client directory in Redis: a hash per client (`<prefix>client:<sha256(clientId)>`)
 * and a sorted set `<prefix>clients` of those key suffixes, scored by the record's expiry
 * (epoch ms; +inf for a record kept until removed), for `list()`.
 *
 * A record with `expiresAt` expires on its own (PEXPIREAT); one without has no TTL: it is
 * a static or CIMD client the caller keeps until it removes it. The index lives as long
 * as its longest-lived member (no TTL while it holds a permanent one). Writes that touch
 * both keys are Lua scripts, so the index score always equals the record's expiry, which
 * is what lets `list()` drop expired members with one ZREMRANGEBYSCORE.
 */
import type { Redis } from 'ioredis';
import { StoreError, type ClientDirectory, type ClientKind, type ClientRecord } from '../contract.js';
import type { RedisKeys } from './keys.js';
import { define, DROP_STALE_MEMBERS, type Arg, type ScriptCall } from './scripts.js';

const KINDS: ReadonlySet<string> = new Set<ClientKind>(['static', 'cimd', 'dcr']);

/**
 * KEYS[1] record, KEYS[2] index; ARGV[1] index member, ARGV[2] expiresAt (epoch ms, '' =
 * never), ARGV[3] now (epoch ms), ARGV[4..] field/value pairs. Replaces the record, drops
 * expired index members, and sets the index's TTL to its longest-lived member.
 */
const PUT = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
local score = '+inf'
if ARGV[2] ~= '' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
  score = ARGV[2]
end
redis.call('ZADD', KEYS[2], score, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if top[2] then
  local last = tonumber(top[2])
  if last == nil or last == math.huge then
    redis.call('PERSIST', KEYS[2])
  else
    redis.call('PEXPIREAT', KEYS[2], string.format('%.0f', last))
  end
end
return 1
`;

/** KEYS[1] record, KEYS[2] index; ARGV[1] index member. 1 removed, 0 missing. */
const REMOVE = `
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return removed
`;

function toRecord(fields: Record<string, string>): ClientRecord | undefined {
  const { clientId, kind, name, createdAt, lastUsedAt } = fields;
  if (clientId === undefined) return undefined;
  if (
    kind === undefined ||
    !KINDS.has(kind) ||
    !Number.isFinite(Number(createdAt)) ||
    (lastUsedAt !== undefined && !Number.isFinite(Number(lastUsedAt)))
  ) {
    throw new StoreError(`the stored client "${clientId}" cannot be read`);
  }
  return {
    clientId,
    kind: kind as ClientKind,
    ...(name === undefined ? {} : { name }),
    createdAt: Number(createdAt),
    ...(lastUsedAt === undefined ? {} : { lastUsedAt: Number(lastUsedAt) }),
  };
}

export class RedisClientDirectory implements ClientDirectory {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #put: ScriptCall;
  readonly #remove: ScriptCall;
  readonly #unindex: ScriptCall;

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    this.#put = define(redis, 'mcpAuthzClientPut', PUT, 2);
    this.#remove = define(redis, 'mcpAuthzClientRemove', REMOVE, 2);
    this.#unindex = define(redis, 'mcpAuthzClientUnindex', DROP_STALE_MEMBERS, 1);
  }

  async put(record: ClientRecord, expiresAt?: number): Promise<void> {
    const fields: Arg[] = ['clientId', record.clientId, 'kind', record.kind, 'createdAt', record.createdAt];
    if (record.name !== undefined) fields.push('name', record.name);
    if (record.lastUsedAt !== undefined) fields.push('lastUsedAt', record.lastUsedAt);
    const key = this.#keys.client(record.clientId);
    const expiry = expiresAt === undefined ? '' : Math.ceil(expiresAt);
    await this.#put(key, this.#keys.clientIndex(), this.#member(key), expiry, Date.now(), ...fields);
  }

  async get(clientId: string): Promise<ClientRecord | undefined> {
    return toRecord(await this.#redis.hgetall(this.#keys.client(clientId)));
  }

  async list(): Promise<ClientRecord[]> {
    const index = this.#keys.clientIndex();
    await this.#redis.zremrangebyscore(index, '-inf', Date.now());
    const members = await this.#redis.zrange(index, 0, -1);
    if (members.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const member of members) pipeline.hgetall(`${this.#keys.clientPrefix()}${member}`);
    const replies = (await pipeline.exec()) ?? [];
    const records: ClientRecord[] = [];
    const vanished: string[] = [];
    replies.forEach(([err, fields], i) => {
      if (err) throw err;
      const record = toRecord(fields as Record<string, string>);
      if (record) records.push(record);
      else vanished.push(members[i]!);
    });
    // a record gone without its index member (e.g. evicted): the script re-checks before dropping it
    if (vanished.length > 0) await this.#unindex(index, this.#keys.clientPrefix(), ...vanished);
    // code-unit order, which matches SQLite's default BINARY collation for BMP text
    return records.sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
  }

  async remove(clientId: string): Promise<boolean> {
    const key = this.#keys.client(clientId);
    const result = await this.#remove(key, this.#keys.clientIndex(), this.#member(key));
    return result === 1;
  }

  /** the index member of a record key: what follows the client prefix */
  #member(key: string): string {
    return key.slice(this.#keys.clientPrefix().length);
  }
}
