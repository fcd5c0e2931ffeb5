/**
 * oidc-provider's adapter for one model, over Redis hashes with native TTLs: an expired
 * record is simply gone, and so are its index keys (they carry the same TTL).
 */
import type { Redis } from 'ioredis';
import { AlreadyConsumedError, type AdapterPayload, type ModelAdapter } from '../contract.js';
import { decodePayload, encodePayload, epochSeconds, lifetimeMs } from '../payload.js';
import type { RedisKeys } from './keys.js';
import type { RedisScripts } from './scripts.js';

export class RedisModelAdapter implements ModelAdapter {
  readonly #model: string;
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts;

  constructor(model: string, redis: Redis, keys: RedisKeys, scripts: RedisScripts) {
    this.#model = model;
    this.#redis = redis;
    this.#keys = keys;
    this.#scripts = scripts;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const record = this.#keys.record(this.#model, id);
    const lifetime = lifetimeMs(expiresIn);
    if (lifetime === 'expired') {
      await this.#scripts.destroy(record);
      return;
    }
    const encoded = encodePayload(this.#model, payload);
    const indexKeys: string[] = [];
    if (encoded.uid !== undefined) indexKeys.push(this.#keys.uid(encoded.uid));
    if (encoded.userCode !== undefined) indexKeys.push(this.#keys.userCode(encoded.userCode));
    const grantKey = encoded.grantId === undefined ? undefined : this.#keys.grant(encoded.grantId);
    await this.#scripts.upsert(
      record,
      indexKeys,
      encoded.body,
      encoded.consumed,
      lifetime === 'none' ? 0 : lifetime,
      grantKey,
    );
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#read(this.#keys.record(this.#model, id), id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#readVia(this.#keys.uid(uid));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#readVia(this.#keys.userCode(userCode));
  }

  async consume(id: string): Promise<void> {
    const result = await this.#scripts.consume(this.#keys.record(this.#model, id), epochSeconds());
    if (result === -1) throw new AlreadyConsumedError(this.#model);
  }

  async destroy(id: string): Promise<void> {
    await this.#scripts.destroy(this.#keys.record(this.#model, id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#scripts.revokeByGrant(this.#keys.grant(grantId), this.#keys.recordPrefix(this.#model));
  }

  /** Follows an index key to its record, provided that record belongs to this model. */
  async #readVia(indexKey: string): Promise<AdapterPayload | undefined> {
    const record = await this.#redis.get(indexKey);
    if (record === null || !record.startsWith(this.#keys.recordPrefix(this.#model))) return undefined;
    return this.#read(record, undefined);
  }

  async #read(record: string, id: string | undefined): Promise<AdapterPayload | undefined> {
    const [body, consumed] = await this.#redis.hmget(record, 'p', 'c');
    if (body === null || body === undefined) return undefined;
    const consumedAt = consumed === null || consumed === undefined ? undefined : Number(consumed);
    return decodePayload(this.#model, body, consumedAt, id);
  }
}
