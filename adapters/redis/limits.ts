/**
 * Rate counters in Redis, shared by every replica: one sorted set per key,
 * `<prefix>limit:{<sha256(key)>}`, whose members are hits scored by their time (epoch ms), and
 * for a key held by a growing delay a string `<prefix>limitHold:{<sha256(key)>}` holding the
 * time the hold ends (one hash tag: both in one Cluster slot, as the script needs). `hit` is one Lua script (trim the window with ZREMRANGEBYSCORE, count
 * with ZCARD, ZADD when allowed, PEXPIRE to the window), so concurrent hits from any number of
 * replicas are decided one at a time: exactly `max` per window are allowed. Both keys expire
 * by themselves (the set a window after its newest hit, the hold when it ends).
 */
import { randomBytes } from 'node:crypto';
import type { RateCounters, RateDecision, RateRule } from '../contract.js';
import type { RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import { define, type ScriptCall } from './scripts.js';

/**
 * KEYS[1] the hits (sorted set), KEYS[2] the hold (string).
 * ARGV[1] now (ms), ARGV[2] window (ms), ARGV[3] max, ARGV[4] a unique member for the hit,
 * ARGV[5] the cap of a growing hold (0: a refusal does not grow the wait).
 * Returns the wait in ms: 0 when the hit was allowed (and counted).
 */
const HIT = `
local hits, hold = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local cap = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', hits, '-inf', now - window)
local count = redis.call('ZCARD', hits)
local wait = 0
if count >= max then
  local nth = redis.call('ZRANGE', hits, count - max, count - max, 'WITHSCORES')
  wait = tonumber(nth[2]) + window - now
end
local held = tonumber(redis.call('GET', hold) or '0') - now
if held > wait then wait = held end
if wait <= 0 then
  redis.call('ZADD', hits, now, ARGV[4])
  redis.call('ZREMRANGEBYRANK', hits, 0, -(max + 1))
  redis.call('PEXPIRE', hits, window)
  return 0
end
if cap > 0 then
  local grown = math.min(wait * 2, cap)
  if grown > wait then wait = grown end
  redis.call('SET', hold, string.format('%d', now + wait), 'PX', string.format('%d', wait))
end
return wait
`;

export class RedisRateCounters implements RateCounters {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;
  readonly #hit: ScriptCall;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    this.#hit = define(redis, 'mcpAuthzLimitHit', HIT, 2);
  }

  async hit(key: string, rule: RateRule, options: { growUpToMs?: number; now?: number } = {}): Promise<RateDecision> {
    const now = Math.floor(options.now ?? Date.now());
    // members must be unique: two hits in the same millisecond are two hits
    const member = `${now}:${randomBytes(6).toString('base64url')}`;
    const wait = await this.#hit(
      this.#keys.limit(key),
      this.#keys.limitHold(key),
      now,
      Math.max(1, Math.floor(rule.windowMs)),
      Math.max(1, Math.floor(rule.max)),
      member,
      Math.max(0, Math.floor(options.growUpToMs ?? 0)),
    );
    if (typeof wait !== 'number') throw new Error(`unexpected rate limit script reply ${typeof wait}`);
    return wait <= 0 ? { allowed: true, retryAfterMs: 0, hit: member } : { allowed: false, retryAfterMs: wait };
  }

  async forget(key: string, hit: string): Promise<void> {
    await this.#redis.zrem(this.#keys.limit(key), hit);
  }

  async reset(key: string): Promise<void> {
    await this.#redis.del(this.#keys.limit(key), this.#keys.limitHold(key));
  }
}
