/**
 * Refresh token rotations in Redis: one string per token hash, `<prefix>rotation:<key>`,
 * always with a TTL. Its value is `0` while claimed and `1` + the sealed outcome once
 * settled.
 *
 * `claim` is `SET … NX PX`, atomic across every replica sharing the Redis; `release`
 * is a Lua compare-and-delete, so it never drops an answer already settled.
 */
import type { RefreshRotations } from '../contract.js';
import type { RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import type { RedisScripts } from './scripts.js';

const CLAIMED = '0';
const SETTLED = '1';


/** `ttlSeconds` as milliseconds: at least 1 ms (Redis refuses a zero or negative PX). */
function lifetimeMs(ttlSeconds: number): number {
  return Math.max(1, Math.round(ttlSeconds * 1000));
}

export class RedisRefreshRotations implements RefreshRotations {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts;

  constructor(redis: RedisClient, keys: RedisKeys, scripts: RedisScripts) {
    this.#redis = redis;
    this.#keys = keys;
    this.#scripts = scripts;
  }

  async claim(key: string, ttlSeconds: number): Promise<boolean> {
    return (await this.#redis.set(this.#keys.rotation(key), CLAIMED, 'PX', lifetimeMs(ttlSeconds), 'NX')) === 'OK';
  }

  async settle(key: string, outcome: string, ttlSeconds: number): Promise<void> {
    await this.#redis.set(this.#keys.rotation(key), `${SETTLED}${outcome}`, 'PX', lifetimeMs(ttlSeconds));
  }

  async get(key: string): Promise<{ outcome?: string } | undefined> {
    const value = await this.#redis.get(this.#keys.rotation(key));
    if (value === null) return undefined;
    return value.startsWith(SETTLED) ? { outcome: value.slice(SETTLED.length) } : {};
  }

  async release(key: string): Promise<void> {
    // compare-and-delete: only while claimed, never a settled answer
    await this.#scripts.deleteIfEqual(this.#keys.rotation(key), CLAIMED);
  }
}
