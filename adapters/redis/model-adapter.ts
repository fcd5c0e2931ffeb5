/**
 * oidc-provider's adapter for one model, over Redis hashes with native TTLs: an expired
 * record is simply gone, and so are its pointer keys (they carry the same TTL).
 *
 * Each step touches one key, so records spread over a Cluster by their own key, and the
 * pointers (uid, userCode) and grant sets by theirs:
 * - upsert: the grant set gains the record first (a record is never stored without its
 *   grant set knowing it: `revokeByGrantId` finds every record of the grant), then the
 *   record is replaced, then its pointers are set and the ones it no longer has removed;
 * - a lookup through a pointer checks that the record it reaches still carries that uid or
 *   user code, so a stale pointer (replaced, or left by a step that failed) finds nothing;
 * - destroy / revokeByGrantId delete the records, then their pointers and set memberships.
 *
 * On one connection (a single server, or the master through Sentinel) commands run in the
 * order they are sent, so `upsert` sends its ordered steps together, in one round trip; on a
 * Cluster they may go to different masters, so it waits for each before sending the next.
 */
import { AlreadyConsumedError, type AdapterPayload, type ModelAdapter } from '../contract.js';
import { decodePayload, encodePayload, epochSeconds, lifetimeMs } from '../payload.js';
import type { RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import type { RedisScripts, Replaced } from './scripts.js';

export class RedisModelAdapter implements ModelAdapter {
  readonly #model: string;
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts;

  constructor(model: string, redis: RedisClient, keys: RedisKeys, scripts: RedisScripts) {
    this.#model = model;
    this.#redis = redis;
    this.#keys = keys;
    this.#scripts = scripts;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const record = this.#keys.record(this.#model, id);
    const lifetime = lifetimeMs(expiresIn);
    if (lifetime === 'expired') {
      await this.#delete(record);
      return;
    }
    const ttlMs = lifetime === 'none' ? 0 : lifetime;
    const encoded = encodePayload(this.#model, payload);
    const pointers: string[] = [];
    if (encoded.uid !== undefined) pointers.push(this.#keys.uid(encoded.uid));
    if (encoded.userCode !== undefined) pointers.push(this.#keys.userCode(encoded.userCode));
    const grantKey = encoded.grantId === undefined ? undefined : this.#keys.grant(encoded.grantId);
    const steps = [
      () => (grantKey === undefined ? undefined : this.#scripts.setAdd(grantKey, record, ttlMs)),
      () => this.#scripts.recordPut(record, encoded.body, encoded.consumed, ttlMs, grantKey, pointers),
      () => Promise.all(pointers.map((pointer) => (ttlMs > 0 ? this.#redis.set(pointer, record, 'PX', ttlMs) : this.#redis.set(pointer, record)))),
    ] as const;
    let replaced: Replaced;
    if (this.#redis.isCluster) {
      await steps[0]();
      replaced = await steps[1]();
      await steps[2]();
    } else {
      [, replaced] = await Promise.all([steps[0](), steps[1](), steps[2]()]);
    }
    // what the previous version had and this one has not
    const stale = replaced.pointers.filter((old) => !pointers.includes(old));
    if (stale.length === 0 && (replaced.grantKey === undefined || replaced.grantKey === grantKey)) return;
    await Promise.all([
      ...stale.map((old) => this.#scripts.deleteIfEqual(old, record)),
      replaced.grantKey !== undefined && replaced.grantKey !== grantKey ? this.#scripts.setRemove(replaced.grantKey, [record]) : undefined,
    ]);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#read(this.#keys.record(this.#model, id), id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const payload = await this.#readVia(this.#keys.uid(uid));
    return payload?.uid === uid ? payload : undefined;
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const payload = await this.#readVia(this.#keys.userCode(userCode));
    return payload?.userCode === userCode ? payload : undefined;
  }

  async consume(id: string): Promise<void> {
    const result = await this.#scripts.consume(this.#keys.record(this.#model, id), epochSeconds());
    if (result === -1) throw new AlreadyConsumedError(this.#model);
  }

  async destroy(id: string): Promise<void> {
    await this.#delete(this.#keys.record(this.#model, id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const grantKey = this.#keys.grant(grantId);
    const prefix = this.#keys.recordPrefix(this.#model);
    const mine = (await this.#redis.smembers(grantKey)).filter((member) => member.startsWith(prefix));
    await Promise.all(mine.map((record) => this.#delete(record)));
    // members whose record had already expired leave the set too
    await this.#scripts.setRemove(grantKey, mine);
  }

  /** Deletes a record, then its pointers (those still naming it) and its grant set membership. */
  async #delete(record: string): Promise<void> {
    const deleted = await this.#scripts.recordDelete(record);
    await Promise.all([
      ...deleted.pointers.map((pointer) => this.#scripts.deleteIfEqual(pointer, record)),
      deleted.grantKey === undefined ? undefined : this.#scripts.setRemove(deleted.grantKey, [record]),
    ]);
  }

  /** Follows a pointer to its record, provided that record belongs to this model. */
  async #readVia(pointer: string): Promise<AdapterPayload | undefined> {
    const record = await this.#redis.get(pointer);
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
