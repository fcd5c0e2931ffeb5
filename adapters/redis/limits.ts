/**
 * Rate counters in Redis, shared by every replica: one sorted set per key,
 * `<prefix>limit:{<sha256(key)>}`, whose members are hits scored by their time (epoch ms), and
 * for a key held by a growing delay a string `<prefix>limitHold:{<sha256(key)>}` holding the
 * time the hold ends (one hash tag: both in one Cluster slot, as the script needs).
 *
 * Every operation is one Lua script, STEPS, which takes any number of steps (`hit`, `forget`,
 * `reset`) in order: a hit trims the window with ZREMRANGEBYSCORE, counts with ZCARD, and ZADDs
 * when allowed, PEXPIREing the set to the window. Redis runs a script atomically, so concurrent
 * hits from any number of replicas are decided one at a time (exactly `max` per window are
 * allowed). The batches asked for during one turn of the event loop (the requests it handled) go
 * out together, at its end, as one script call: each batch's steps stay together and in order,
 * and a failure fails every batch of the call. On a Redis Cluster a script may only touch one
 * slot, and the keys of different counters lie in different slots: there each step is a script
 * call of its own. Both keys expire by themselves (the set a window after its newest hit, the
 * hold when it ends).
 */
import { randomBytes } from 'node:crypto';
import type { RateCounters, RateDecision, RateRule, RateStep } from '../contract.js';
import type { RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import { define, type ScriptCall } from './scripts.js';

/**
 * KEYS: the pairs of keys the steps touch, each pair once: a rate-limit key's hits (sorted set)
 * and its hold (string). ARGV: one string per step, `<pair> <kind> <now> <window> <max> <cap>
 * <member>`: the pair's number (1, 2, …), the kind ('hit', 'forget' or 'reset'), now (ms), the
 * window (ms), max, the cap of a growing hold (0: a refusal does not grow the wait) and a member
 * (the hit to add, unique, or the one to forget; the rest of the string). One string a step, not six
 * arguments: what the client builds and sends for a call is most of what a limit costs it.
 * Returns each step's wait in ms: 0 when a hit was allowed (and counted), and for the other kinds.
 */
const STEPS = `
local waits = {}
for i = 1, #ARGV do
  local pair, kind, now, window, max, cap, member = string.match(ARGV[i], '^(%d+) (%a+) (%-?%d+) (%d+) (%d+) (%d+) (.*)$')
  if not pair then return redis.error_reply('malformed rate limit step ' .. i) end
  local hits, hold = KEYS[2 * tonumber(pair) - 1], KEYS[2 * tonumber(pair)]
  if not hold then return redis.error_reply('rate limit step ' .. i .. ' names no keys') end
  local wait = 0
  if kind == 'hit' then
    now = tonumber(now)
    window = tonumber(window)
    max = tonumber(max)
    cap = tonumber(cap)
    redis.call('ZREMRANGEBYSCORE', hits, '-inf', now - window)
    local count = redis.call('ZCARD', hits)
    if count >= max then
      local nth = redis.call('ZRANGE', hits, count - max, count - max, 'WITHSCORES')
      wait = tonumber(nth[2]) + window - now
    end
    local held = tonumber(redis.call('GET', hold) or '0') - now
    if held > wait then wait = held end
    if wait <= 0 then
      wait = 0
      redis.call('ZADD', hits, now, member)
      redis.call('ZREMRANGEBYRANK', hits, 0, -(max + 1))
      redis.call('PEXPIRE', hits, window)
    elseif cap > 0 then
      local grown = math.min(wait * 2, cap)
      if grown > wait then wait = grown end
      redis.call('SET', hold, string.format('%d', now + wait), 'PX', string.format('%d', wait))
    end
  elseif kind == 'forget' then
    redis.call('ZREM', hits, member)
  elseif kind == 'reset' then
    redis.call('DEL', hits, hold)
  else
    return redis.error_reply('unknown rate limit step ' .. tostring(kind))
  end
  waits[i] = wait
end
return waits
`;

/** One step as the script takes it: its keys, and its argument without the pair's number. */
interface Call {
  keys: readonly [string, string];
  step: string;
  member: string;
}

/** Batches waiting for the end of the event loop's turn. */
interface Waiting {
  calls: Call[];
  resolve(waits: unknown[]): void;
  reject(err: unknown): void;
}

/** Most steps in one script call (a turn's batches beyond it go in further calls). */
const MAX_STEPS_PER_CALL = 512;
/** Rate-limit keys whose Redis keys are kept, not hashed again (the cache starts afresh when full). */
const MAX_CACHED_KEYS = 4096;

export class RedisRateCounters implements RateCounters {
  readonly #keys: RedisKeys;
  readonly #steps: ScriptCall;
  readonly #cluster: boolean;
  /** hit members are this process's random prefix and a sequence number: unique across replicas */
  readonly #process = randomBytes(9).toString('base64url');
  #sequence = 0;
  #waiting: Waiting[] = [];
  /** rate-limit key → its two Redis keys: a busy key (a client's tokens) is hashed once, not every step */
  readonly #keyCache = new Map<string, readonly [string, string]>();

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#keys = keys;
    this.#steps = define(redis, 'mcpAuthzLimitSteps', STEPS);
    this.#cluster = redis.isCluster;
  }

  async hit(key: string, rule: RateRule, options: { growUpToMs?: number; now?: number } = {}): Promise<RateDecision> {
    const [decision] = await this.batch([{ kind: 'hit', key, rule, ...(options.growUpToMs === undefined ? {} : { growUpToMs: options.growUpToMs }) }], options);
    return decision!;
  }

  async forget(key: string, hit: string): Promise<void> {
    await this.batch([{ kind: 'forget', key, hit }]);
  }

  async reset(key: string): Promise<void> {
    await this.batch([{ kind: 'reset', key }]);
  }

  async batch(steps: readonly RateStep[], options: { now?: number } = {}): Promise<(RateDecision | undefined)[]> {
    if (steps.length === 0) return [];
    const now = Math.floor(options.now ?? Date.now());
    const calls = steps.map((step) => this.#call(step, now));
    if (this.#cluster) {
      // one call per step (each in its own slot), sent together
      const replies = await Promise.all(calls.map((call) => this.#run([call])));
      return replies.map((reply, i) => decide(steps[i]!, calls[i]!.member, reply[0]));
    }
    const waits = await new Promise<unknown[]>((resolve, reject) => {
      this.#waiting.push({ calls, resolve, reject });
      if (this.#waiting.length === 1) setImmediate(() => this.#flush());
    });
    return steps.map((step, i) => decide(step, calls[i]!.member, waits[i]));
  }

  /** Sends the turn's batches, as few script calls as fit. */
  #flush(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (let start = 0; start < waiting.length; ) {
      const group: Waiting[] = [];
      let size = 0;
      while (start < waiting.length && (group.length === 0 || size + waiting[start]!.calls.length <= MAX_STEPS_PER_CALL)) {
        size += waiting[start]!.calls.length;
        group.push(waiting[start++]!);
      }
      this.#run(group.flatMap((w) => w.calls)).then(
        (waits) => {
          let at = 0;
          for (const w of group) {
            w.resolve(waits.slice(at, at + w.calls.length));
            at += w.calls.length;
          }
        },
        (err: unknown) => {
          for (const w of group) w.reject(err);
        },
      );
    }
  }

  #call(step: RateStep, now: number): Call {
    const keys = this.#limitKeys(step.key);
    if (step.kind === 'hit') {
      // members must be unique: two hits in the same millisecond are two hits
      const member = `${now}:${this.#process}:${++this.#sequence}`;
      const window = Math.max(1, Math.floor(step.rule.windowMs));
      return { keys, member, step: `hit ${now} ${window} ${Math.max(1, Math.floor(step.rule.max))} ${Math.max(0, Math.floor(step.growUpToMs ?? 0))} ${member}` };
    }
    if (step.kind === 'forget') return { keys, member: step.hit, step: `forget ${now} 0 0 0 ${step.hit}` };
    return { keys, member: '', step: `reset ${now} 0 0 0 ` };
  }

  #limitKeys(key: string): readonly [string, string] {
    let keys = this.#keyCache.get(key);
    if (!keys) {
      if (this.#keyCache.size >= MAX_CACHED_KEYS) this.#keyCache.clear();
      keys = this.#keys.limit(key);
      this.#keyCache.set(key, keys);
    }
    return keys;
  }

  async #run(calls: Call[]): Promise<unknown[]> {
    // each pair of keys once, the steps naming theirs by number
    const pairs = new Map<string, number>();
    const keys: string[] = [];
    const args = calls.map((call) => {
      let pair = pairs.get(call.keys[0]);
      if (pair === undefined) {
        keys.push(call.keys[0], call.keys[1]);
        pair = keys.length / 2;
        pairs.set(call.keys[0], pair);
      }
      return `${pair} ${call.step}`;
    });
    const reply = await this.#steps(keys.length, ...keys, ...args);
    if (!Array.isArray(reply) || reply.length !== calls.length) throw new Error('unexpected rate limit script reply');
    return reply;
  }
}

function decide(step: RateStep, member: string, wait: unknown): RateDecision | undefined {
  if (typeof wait !== 'number') throw new Error(`unexpected rate limit script reply ${typeof wait}`);
  if (step.kind !== 'hit') return undefined;
  return wait <= 0 ? { allowed: true, retryAfterMs: 0, hit: member } : { allowed: false, retryAfterMs: wait };
}
