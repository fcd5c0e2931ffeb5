/**
 * Rate counters in Redis, shared by every replica: one sorted set per key,
 * `<prefix>limit:{<sha256(key)>}`, whose members are hits scored by their time (epoch ms), and
 * for a key held by a growing delay a string `<prefix>limitHold:{<sha256(key)>}` holding the
 * time the hold ends (one hash tag: both in one Cluster slot, as the script needs).
 *
 * Every operation is one Lua script, STEPS, which takes any number of steps in order: a hit
 * trims the window with ZREMRANGEBYSCORE, counts with ZCARD, and ZADDs when allowed, keeping the
 * set a window. Redis runs a script atomically, so concurrent hits from any number of replicas
 * are decided one at a time (exactly `max` per window are allowed). The batches asked for during
 * one turn of the event loop (the requests it handled) go out together, at its end, as one script
 * call: each batch's steps stay together and in order, and a failure fails every batch of the
 * call. On a Redis Cluster a script may only touch one slot, and the keys of different counters
 * lie in different slots: there each step is a script call of its own. Both keys expire by
 * themselves (the set a window after its newest hit, the hold when it ends).
 *
 * **Shares** (`hit` with `reserve`, the token budget of a client): a key taking hits faster than
 * SHARE_FROM in SHARE_MS has this replica reserve, in the step that counts a hit, up to as many
 * more as it took in the last SHARE_MS (at most a SHARE_PART-th of `max`), and the next hits are
 * answered from that share without a round trip. A reserved hit is dated when the share ends
 * (SHARE_MS on), not when it is used, so it stays in the window at least as long as the hit it
 * stands for: at most `max` hits a window still pass, whatever the replicas do. What a share does
 * not use goes back when it ends. The price is exactness at the limit: while one replica holds
 * part of a share unused, another may be refused that place, for at most SHARE_MS.
 */
import { randomBytes } from 'node:crypto';
import type { RateCounters, RateDecision, RateRule, RateStep } from '../contract.js';
import type { RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import { define, type ScriptCall } from './scripts.js';

/**
 * KEYS: the pairs of keys the steps touch, each pair once: a rate-limit key's hits (sorted set)
 * and its hold (string). ARGV: one string per step, `<pair> <kind> <rest>`: the pair's number
 * (1, 2, …), the kind, and what the kind takes (one string a step, not an argument a field: what
 * the client builds and sends for a call is most of what a limit costs it):
 * - `hit <now> <window> <max> <cap> <member>`: now and the window in ms, the cap of a growing
 *   hold (0: a refusal does not grow the wait) and the hit's member (unique); answers the wait in
 *   ms, 0 when the hit was allowed (and counted);
 * - `reserve <now> <window> <max> <n> <till> <first> <prefix>`: up to n hits dated `till`, members
 *   `<prefix><first>`, `<prefix><first + 1>`, …; answers {hits reserved, the wait after them};
 * - `release <first> <last> <prefix>`: takes back reserved hits `<prefix><first>` to `<prefix><last>`;
 * - `forget <member>` takes back one hit, `reset ` forgets the key's hits and hold; both answer 0.
 */
const STEPS = `
-- the wait (ms) before the key may take one more hit: the window's (0 while it has room) or the hold's, the longer
local function waitOf(hits, hold, now, window, max)
  local wait = 0
  local count = redis.call('ZCARD', hits)
  if count >= max then
    local nth = redis.call('ZRANGE', hits, count - max, count - max, 'WITHSCORES')
    wait = tonumber(nth[2]) + window - now
  end
  local held = tonumber(redis.call('GET', hold) or '0') - now
  if held > wait then wait = held end
  if wait < 0 then wait = 0 end
  return wait
end

-- the set lives a window past its newest hit (reserved hits are dated ahead): never shortened
local function keep(hits, ms)
  if redis.call('PTTL', hits) < ms then redis.call('PEXPIRE', hits, ms) end
end

local answers = {}
for i = 1, #ARGV do
  local pair, kind, rest = string.match(ARGV[i], '^(%d+) (%a+) (.*)$')
  if not pair then return redis.error_reply('malformed rate limit step ' .. i) end
  local hits, hold = KEYS[2 * tonumber(pair) - 1], KEYS[2 * tonumber(pair)]
  if not hold then return redis.error_reply('rate limit step ' .. i .. ' names no keys') end
  local answer = 0
  if kind == 'hit' then
    local now, window, max, cap, member = string.match(rest, '^(%-?%d+) (%d+) (%d+) (%d+) (.+)$')
    if not now then return redis.error_reply('malformed rate limit hit ' .. i) end
    now, window, max, cap = tonumber(now), tonumber(window), tonumber(max), tonumber(cap)
    redis.call('ZREMRANGEBYSCORE', hits, '-inf', now - window)
    local wait = waitOf(hits, hold, now, window, max)
    if wait == 0 then
      redis.call('ZADD', hits, now, member)
      redis.call('ZREMRANGEBYRANK', hits, 0, -(max + 1))
      keep(hits, window)
    elseif cap > 0 then
      local grown = math.min(wait * 2, cap)
      if grown > wait then wait = grown end
      redis.call('SET', hold, string.format('%d', now + wait), 'PX', string.format('%d', wait))
    end
    answer = wait
  elseif kind == 'reserve' then
    -- up to n hits at once, dated 'till' (when the reserving replica stops using them), members
    -- prefix .. first, prefix .. first + 1, ...: answers {hits reserved, the wait after them}
    local now, window, max, n, till, first, prefix = string.match(rest, '^(%-?%d+) (%d+) (%d+) (%d+) (%-?%d+) (%d+) (.+)$')
    if not now then return redis.error_reply('malformed rate limit reserve ' .. i) end
    now, window, max, n, till, first = tonumber(now), tonumber(window), tonumber(max), tonumber(n), tonumber(till), tonumber(first)
    redis.call('ZREMRANGEBYSCORE', hits, '-inf', now - window)
    local reserved = 0
    if waitOf(hits, hold, now, window, max) == 0 then
      reserved = math.min(n, max - redis.call('ZCARD', hits))
      for k = 0, reserved - 1 do redis.call('ZADD', hits, till, prefix .. (first + k)) end
      keep(hits, till - now + window)
    end
    answer = {reserved, waitOf(hits, hold, now, window, max)}
  elseif kind == 'release' then
    -- reserved hits not used: members prefix .. first to prefix .. last
    local first, last, prefix = string.match(rest, '^(%d+) (%d+) (.+)$')
    if not first then return redis.error_reply('malformed rate limit release ' .. i) end
    for k = tonumber(first), tonumber(last) do redis.call('ZREM', hits, prefix .. k) end
  elseif kind == 'forget' then
    redis.call('ZREM', hits, rest)
  elseif kind == 'reset' then
    redis.call('DEL', hits, hold)
  else
    return redis.error_reply('unknown rate limit step ' .. tostring(kind))
  end
  answers[i] = answer
end
return answers
`;

/** One step as the script takes it: its keys, and its argument without the pair's number. */
interface Call {
  keys: readonly [string, string];
  step: string;
}

/** Steps waiting for the end of the event loop's turn: a batch, or a key's hits asking for a share. */
interface Waiting {
  /** the steps, built when the turn ends (an ask for a share sizes itself then) */
  calls(): Call[];
  resolve(answers: unknown[]): void;
  reject(err: unknown): void;
}

/** The steps of a hit answered from a share: none. */
const NO_CALLS = (): Call[] => [];

/** Most steps in one script call (a turn's batches beyond it go in further calls). */
const MAX_STEPS_PER_CALL = 512;
/** Rate-limit keys whose Redis keys are kept, not hashed again (the cache starts afresh when full). */
const MAX_CACHED_KEYS = 4096;

/** How long a share lasts: its hits are dated its end, and what it did not use goes back then. */
export const SHARE_MS = 100;
/** A share is at most this part of the key's `max`, so that the replicas' shares leave most of it counted hit by hit. */
const SHARE_PART = 16;
/** Hits a key must have taken in the last SHARE_MS before shares are reserved for it (fewer: each hit is a step of its own). */
const SHARE_FROM = 4;
/** Most keys followed for shares at once (the least recently busy are forgotten first). */
const MAX_SHARED_KEYS = 1024;

/** The hits of a share: members `${prefix}${n}` for `next` ≤ n ≤ `last`, dated `until`. */
interface Share {
  prefix: string;
  next: number;
  last: number;
  until: number;
}

/** A key hit with `reserve`: how busy it is, its shares, and its hits waiting for one. */
interface Shared {
  /** hits in the current SHARE_MS (from `since`) and in the one before */
  since: number;
  count: number;
  before: number;
  shares: Share[];
  /** hits made this turn, answered when the ask for a share is */
  asking: { hits: ((answer: RateDecision | Error) => void)[] } | undefined;
}

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
  /** keys hit with `reserve`, least recently used first */
  readonly #shared = new Map<string, Shared>();

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#keys = keys;
    this.#steps = define(redis, 'mcpAuthzLimitSteps', STEPS);
    this.#cluster = redis.isCluster;
  }

  hit(key: string, rule: RateRule, options: { growUpToMs?: number; now?: number; reserve?: boolean } = {}): Promise<RateDecision> {
    // the shared hit's own promise, not one more around it (the token path takes this every request)
    if (options.reserve && options.growUpToMs === undefined) return this.#sharedHit(key, rule, Math.floor(options.now ?? Date.now()));
    return this.batch([{ kind: 'hit', key, rule, ...(options.growUpToMs === undefined ? {} : { growUpToMs: options.growUpToMs }) }], options).then(([decision]) => decision!);
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
    // a reset forgets the key's shares too: their hits are gone from Redis
    for (const step of steps) if (step.kind === 'reset') this.#shared.delete(step.key);
    const members: string[] = [];
    const calls = steps.map((step) => this.#call(step, now, members));
    const answers = await this.#send(() => calls);
    return steps.map((step, i) => decide(step, members[i]!, answers[i]));
  }

  /**
   * A hit that may be answered from a share of the key's budget (see the header). Answered at the
   * end of the turn, as every call is: from a share when one lasts, else with the turn's other
   * hits of the key by one `reserve` step sized for them and for the next SHARE_MS.
   */
  #sharedHit(key: string, rule: RateRule, now: number): Promise<RateDecision> {
    const shared = this.#sharedKey(key, now);
    shared.count++;
    const member = takeFrom(shared, now);
    if (member !== undefined) {
      // no round trip, but not within this turn either: answered when the turn's steps are sent,
      // as the hits that wait for one are (one promise, the busy key's every request)
      const decision: RateDecision = { allowed: true, retryAfterMs: 0, hit: member };
      return new Promise<RateDecision>((resolve, reject) => this.#enqueue({ calls: NO_CALLS, resolve: () => resolve(decision), reject }));
    }
    return new Promise<RateDecision>((resolve, reject) => {
      const answer = (decision: RateDecision | Error) => (decision instanceof Error ? reject(decision) : resolve(decision));
      if (shared.asking) {
        shared.asking.hits.push(answer);
        return;
      }
      const asking: NonNullable<Shared['asking']> = { hits: [answer] };
      shared.asking = asking;
      let first = 0;
      let till = now;
      let prefix = '';
      this.#send(() => {
        // sized now that the turn has ended: its hits, and as many as the last SHARE_MS took
        shared.asking = undefined;
        const ahead = shared.before >= SHARE_FROM ? Math.min(shared.before, Math.floor(rule.max / SHARE_PART)) : 0;
        const wanted = asking.hits.length + ahead;
        // hits used at once are dated now; a share's, when it ends
        till = ahead > 0 ? now + SHARE_MS : now;
        prefix = `${till}:${this.#process}:`;
        first = this.#sequence + 1;
        this.#sequence += wanted;
        const window = Math.max(1, Math.floor(rule.windowMs));
        const max = Math.max(1, Math.floor(rule.max));
        return [{ keys: this.#limitKeys(key), step: `reserve ${now} ${window} ${max} ${wanted} ${till} ${first} ${prefix}` }];
      })
        .then(([reply]) => {
          const [reserved, wait] = shareReply(reply);
          const hits = asking.hits;
          for (let i = 0; i < hits.length; i++) {
            hits[i]!(i < reserved ? { allowed: true, retryAfterMs: 0, hit: `${prefix}${first + i}` } : { allowed: false, retryAfterMs: Math.max(1, wait) });
          }
          if (reserved > hits.length) this.#keep(key, shared, { prefix, next: first + hits.length, last: first + reserved - 1, until: till });
        })
        .catch((err: unknown) => {
          for (const hit of asking.hits) hit(err instanceof Error ? err : new Error(String(err)));
        });
    });
  }

  /** The key's record for shares, its busyness brought up to `now`. */
  #sharedKey(key: string, now: number): Shared {
    let shared = this.#shared.get(key);
    if (shared) {
      // least recently used first
      this.#shared.delete(key);
    } else {
      if (this.#shared.size >= MAX_SHARED_KEYS) this.#shared.delete(this.#shared.keys().next().value!);
      shared = { since: now, count: 0, before: 0, shares: [], asking: undefined };
    }
    this.#shared.set(key, shared);
    if (now - shared.since >= SHARE_MS) {
      shared.before = now - shared.since < 2 * SHARE_MS ? shared.count : 0;
      shared.count = 0;
      shared.since = now;
    }
    return shared;
  }

  /** Keeps a share for the key's next hits, and gives back what they leave of it when it ends. */
  #keep(key: string, shared: Shared, share: Share): void {
    shared.shares.push(share);
    setTimeout(() => {
      const at = shared.shares.indexOf(share);
      if (at >= 0) shared.shares.splice(at, 1);
      if (share.next > share.last) return;
      const { next, last } = share;
      share.next = share.last + 1;
      // left over: in the window until a window after the share's end unless given back (a failure leaves just that)
      this.#send(() => [{ keys: this.#limitKeys(key), step: `release ${next} ${last} ${share.prefix}` }]).catch(() => {});
    }, Math.max(0, share.until - Date.now())).unref();
  }

  /** Sends steps at the end of this turn with the others asked for in it; answers theirs. */
  #send(calls: () => Call[]): Promise<unknown[]> {
    return new Promise<unknown[]>((resolve, reject) => this.#enqueue({ calls, resolve, reject }));
  }

  #enqueue(waiting: Waiting): void {
    if (this.#waiting.push(waiting) === 1) setImmediate(() => this.#flush());
  }

  /** Sends the turn's batches, as few script calls as fit (on a Cluster, one call a step). */
  #flush(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    const built: { w: Waiting; calls: Call[] }[] = [];
    for (const w of waiting) {
      let calls: Call[];
      try {
        calls = w.calls();
      } catch (err) {
        w.reject(err);
        continue;
      }
      // nothing to send (a hit answered from a share): answered now, whatever Redis says to the rest
      if (calls.length === 0) w.resolve([]);
      else built.push({ w, calls });
    }
    if (this.#cluster) {
      for (const { w, calls } of built) Promise.all(calls.map((call) => this.#run([call]).then((answers) => answers[0]))).then(w.resolve, w.reject);
      return;
    }
    for (let start = 0; start < built.length; ) {
      const group: typeof built = [];
      let size = 0;
      while (start < built.length && (group.length === 0 || size + built[start]!.calls.length <= MAX_STEPS_PER_CALL)) {
        size += built[start]!.calls.length;
        group.push(built[start++]!);
      }
      this.#run(group.flatMap((g) => g.calls)).then(
        (answers) => {
          let at = 0;
          for (const { w, calls } of group) {
            w.resolve(answers.slice(at, at + calls.length));
            at += calls.length;
          }
        },
        (err: unknown) => {
          for (const { w } of group) w.reject(err);
        },
      );
    }
  }

  /** The step for the script; a hit's member goes in `members` (at the step's index). */
  #call(step: RateStep, now: number, members: string[]): Call {
    const keys = this.#limitKeys(step.key);
    if (step.kind === 'hit') {
      // members must be unique: two hits in the same millisecond are two hits
      const member = `${now}:${this.#process}:${++this.#sequence}`;
      members.push(member);
      const window = Math.max(1, Math.floor(step.rule.windowMs));
      return { keys, step: `hit ${now} ${window} ${Math.max(1, Math.floor(step.rule.max))} ${Math.max(0, Math.floor(step.growUpToMs ?? 0))} ${member}` };
    }
    members.push('');
    if (step.kind === 'forget') return { keys, step: `forget ${step.hit}` };
    return { keys, step: 'reset ' };
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

/** The next unused hit of the key's shares still lasting at `now`, taken; undefined when none. */
function takeFrom(shared: Shared, now: number): string | undefined {
  for (const share of shared.shares) {
    if (share.until > now && share.next <= share.last) return `${share.prefix}${share.next++}`;
  }
  return undefined;
}

function shareReply(reply: unknown): [reserved: number, wait: number] {
  if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') throw new Error('unexpected rate limit script reply to a reserve step');
  return [reply[0], reply[1]];
}

function decide(step: RateStep, member: string, wait: unknown): RateDecision | undefined {
  if (typeof wait !== 'number') throw new Error(`unexpected rate limit script reply ${typeof wait}`);
  if (step.kind !== 'hit') return undefined;
  return wait <= 0 ? { allowed: true, retryAfterMs: 0, hit: member } : { allowed: false, retryAfterMs: wait };
}
