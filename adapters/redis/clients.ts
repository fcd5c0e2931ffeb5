/**
 * The client directory in Redis: a hash per client (`<prefix>client:<sha256(clientId)>`)
 * and a sorted set `<prefix>clients` of those key suffixes, scored by the record's expiry
 * (epoch ms; +inf for a record kept until removed), for `list()`.
 *
 * A record with `expiresAt` expires on its own (PEXPIREAT); one without has no TTL: it is
 * a static or CIMD client the caller keeps until it removes it. The index lives as long
 * as its longest-lived member (no TTL while it holds a permanent one). Its score is the
 * record's expiry, which lets `list()` drop expired members with one ZREMRANGEBYSCORE.
 *
 * Record and index are separate keys (on a Cluster, in different slots), each written by a
 * single-key script: `put` writes the index first and the record second, `remove` the other
 * way round, so a live record is always listed; a member whose record has gone another way
 * (eviction) is dropped when `list()` finds it missing.
 */
import { StoreError, type ClientDirectory, type ClientKind, type ClientRecord } from '../contract.js';
import { hgetallEach, type RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import { define, DROP_STALE_MEMBERS, HASH_REPLACE, INDEX_ADD, type Arg, type ScriptCall } from './scripts.js';

const KINDS: ReadonlySet<string> = new Set<ClientKind>(['static', 'cimd', 'dcr']);

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
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;
  readonly #replace: ScriptCall;
  readonly #index: ScriptCall;
  readonly #unindex: ScriptCall;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    this.#replace = define(redis, 'mcpAuthzHashReplace', HASH_REPLACE, 1);
    this.#index = define(redis, 'mcpAuthzIndexAdd', INDEX_ADD, 1);
    this.#unindex = define(redis, 'mcpAuthzDropStaleMembers', DROP_STALE_MEMBERS, 1);
  }

  async put(record: ClientRecord, expiresAt?: number): Promise<void> {
    const fields: Arg[] = ['clientId', record.clientId, 'kind', record.kind, 'createdAt', record.createdAt];
    if (record.name !== undefined) fields.push('name', record.name);
    if (record.lastUsedAt !== undefined) fields.push('lastUsedAt', record.lastUsedAt);
    const key = this.#keys.client(record.clientId);
    const expiry = expiresAt === undefined ? '' : Math.ceil(expiresAt);
    await this.#index(this.#keys.clientIndex(), this.#member(key), expiry === '' ? '+inf' : expiry, Date.now());
    await this.#replace(key, expiry, ...fields);
  }

  async get(clientId: string): Promise<ClientRecord | undefined> {
    return toRecord(await this.#redis.hgetall(this.#keys.client(clientId)));
  }

  async list(): Promise<ClientRecord[]> {
    const index = this.#keys.clientIndex();
    await this.#redis.zremrangebyscore(index, '-inf', Date.now());
    const scored = await this.#redis.zrange(index, 0, -1, 'WITHSCORES');
    const members = scored.filter((_, i) => i % 2 === 0);
    const replies = await hgetallEach(this.#redis, members.map((member) => `${this.#keys.clientPrefix()}${member}`));
    const records: ClientRecord[] = [];
    const vanished: string[] = [];
    replies.forEach((fields, i) => {
      const record = toRecord(fields);
      if (record) records.push(record);
      else vanished.push(scored[2 * i]!, scored[2 * i + 1]!);
    });
    // a record gone without its index member (e.g. evicted); the script keeps it if it was put again meanwhile
    if (vanished.length > 0) await this.#unindex(index, ...vanished);
    // code-unit order, which matches SQLite's default BINARY collation for BMP text
    return records.sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
  }

  async remove(clientId: string): Promise<boolean> {
    const key = this.#keys.client(clientId);
    const removed = await this.#redis.del(key);
    await this.#redis.zrem(this.#keys.clientIndex(), this.#member(key));
    return removed === 1;
  }

  /** the index member of a record key: what follows the client prefix */
  #member(key: string): string {
    return key.slice(this.#keys.clientPrefix().length);
  }
}
