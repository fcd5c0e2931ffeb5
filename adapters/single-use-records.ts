/**
 * Short-lived records in the store (so another replica can answer the next request), each
 * used once: `take` consumes it atomically, so of two concurrent uses only one gets it. They
 * hold what a step of a sign-in keeps between requests: who passed the first factor, a TOTP
 * secret being enrolled, a WebAuthn challenge (src/second-factors), an upstream sign-in on its
 * way (src/connections/pending.ts). Keys are up to 200 of `A-Z a-z 0-9 _ : . -`; any other
 * key finds nothing.
 */
import { randomBytes } from 'node:crypto';
import { AlreadyConsumedError, type Store } from './contract.js';

const KEY = /^[A-Za-z0-9_:.-]{1,200}$/;

export class SingleUseRecords<T extends object> {
  constructor(
    private readonly store: Store,
    private readonly model: string,
    /** seconds a record lives */
    readonly ttl: number,
  ) {}

  static newKey(): string {
    return randomBytes(32).toString('base64url');
  }

  /** Keeps `value` under `key` for the TTL (replacing what was there). */
  async put(key: string, value: T): Promise<void> {
    await this.store.model(this.model).upsert(key, { value, expiresAt: Date.now() + this.ttl * 1000 } as never, this.ttl);
  }

  /** Replaces the value under `key` without extending its life; false when it is gone. */
  async replace(key: string, value: T): Promise<boolean> {
    const found = await this.#find(key);
    if (!found) return false;
    const left = Math.ceil((found.expiresAt - Date.now()) / 1000);
    if (left <= 0) return false;
    await this.store.model(this.model).upsert(key, { value, expiresAt: found.expiresAt } as never, left);
    return true;
  }

  /** The value under `key`, without using it up. */
  async peek(key: string | undefined): Promise<T | undefined> {
    return (await this.#find(key))?.value;
  }

  /** The value under `key`, once: later calls (and a concurrent one) get undefined. */
  async take(key: string | undefined): Promise<T | undefined> {
    const found = await this.#find(key);
    if (!found || key === undefined) return undefined;
    const model = this.store.model(this.model);
    try {
      await model.consume(key);
    } catch (err) {
      if (err instanceof AlreadyConsumedError) return undefined;
      throw err;
    }
    await model.destroy(key);
    return found.value;
  }

  async drop(key: string | undefined): Promise<void> {
    if (key !== undefined && KEY.test(key)) await this.store.model(this.model).destroy(key);
  }

  async #find(key: string | undefined): Promise<{ value: T; expiresAt: number } | undefined> {
    if (typeof key !== 'string' || !KEY.test(key)) return undefined;
    const found = (await this.store.model(this.model).find(key)) as { value?: T; expiresAt?: number; consumed?: unknown } | undefined;
    if (!found || found.consumed !== undefined || typeof found.value !== 'object' || found.value === null) return undefined;
    if (typeof found.expiresAt !== 'number' || found.expiresAt <= Date.now()) return undefined;
    return { value: found.value, expiresAt: found.expiresAt };
  }
}
