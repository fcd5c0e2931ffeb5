/**
 * Refresh token rotations in Redis: one string per token hash, `<prefix>rotation:<key>`,
 * always with a TTL. Its value is `0` while claimed and `1` + the sealed outcome once
 * settled.
 *
 * `claim` is `SET … NX PX`, atomic across every replica sharing the Redis; `release`
 * is a Lua compare-and-delete, so it never drops an answer already settled.
 */
import type { Redis } from 'ioredis';
import type { RefreshRotations } from '../contract.js';
import type { RedisKeys } from './keys.js';
import { define, type ScriptCall } from './scripts.js';

const CLAIMED = '0';
const SETTLED = '1';

/** KEYS[1] rotation; ARGV[1] the claimed marker. Deletes the key only while claimed, not settled. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;


/** `ttlSeconds` as milliseconds: at least 1 ms (Redis refuses a zero or negative PX). */
function lifetimeMs(ttlSeconds: number): number {
  return Math.max(1, Math.round(ttlSeconds * 1000));
}

export class RedisRefreshRotations implements RefreshRotations {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #release: ScriptCall;

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    this.#release = define(redis, 'mcpAuthzRotationRelease', RELEASE, 1);
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
    await this.#release(this.#keys.rotation(key), CLAIMED);
  }
}
