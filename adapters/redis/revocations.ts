/**
 * The revocation log as a Redis Stream, `<prefix>revocations`: one entry per event,
 * field `e` = the event JSON, ids assigned by Redis (`XADD … *`), so they increase in
 * append order across every replica and process sharing the Redis.
 *
 * Waiting (`readAfter` with `waitMs`) is `XREAD BLOCK`, which would stall every other
 * command queued behind it on a shared connection; it runs on dedicated connections
 * (a duplicate of the store's client: on a Cluster a Cluster of its own, through Sentinel
 * a client that follows the master too), created on first need, reused one wait at a
 * time, and closed with the store. The stream is one key, so in Cluster mode every read
 * and append goes to the master holding its slot.
 *
 * Retention: readers skip entries whose `until` has passed and `prune` deletes them;
 * `MAXLEN ~ 100000` caps the stream should pruning never run; the key's TTL is extended
 * on every append to at least a day past the newest `until`, so an idle log disappears.
 */
import type { RevocationEntry, RevocationEvent, RevocationLog } from '../contract.js';
import { decodeRevocationEvent } from '../payload.js';
import { duplicateForBlocking, type RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';

/** the approximate cap on the stream's length (a safety net; `prune` is what normally trims) */
export const STREAM_MAX_LENGTH = 100_000;

/** how long the stream key outlives the newest `until` among its appends */
const KEY_GRACE_MS = 24 * 60 * 60 * 1000;

/** an absurdly distant `until` still yields a TTL Redis accepts (10 years) */
const MAX_KEEP_MS = 10 * 365 * 24 * 60 * 60 * 1000;

/** the most entries one read returns, whatever `limit` asks */
const MAX_BATCH = 100_000;

/** entries examined per XRANGE page by `prune` */
const PRUNE_PAGE = 1000;

/** extra time a blocking read may take past `waitMs` (e.g. while reconnecting) before it is abandoned */
const BLOCK_GRACE_MS = 2000;

const U64_MAX = 2n ** 64n - 1n;

/**
 * KEYS[1] stream; ARGV[1] event JSON, ARGV[2] max length, ARGV[3] TTL (ms) the key must
 * keep at least. Appends and extends the TTL (never shortens it: events are not appended
 * in strict `until` order) atomically; returns the entry id.
 * `replicate_commands` lets a script write after the non-deterministic `XADD *` on Redis
 * before 7 (where it is a no-op).
 */
const APPEND = `
if redis.replicate_commands then redis.replicate_commands() end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
local keep = tonumber(ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or ttl < keep then redis.call('PEXPIRE', KEYS[1], keep) end
return id
`;

type RawEntry = [id: string, fields: string[]];
type AppendCall = (key: string, json: string, maxLength: number, keepMs: number) => Promise<unknown>;

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** `[ms, seq]` of a valid stream id, or undefined (then the caller reads from the start). */
function parseStreamId(id: string | undefined): [bigint, bigint] | undefined {
  const match = id === undefined ? null : /^(\d+)-(\d+)$/.exec(id);
  if (!match) return undefined;
  const ms = BigInt(match[1]!);
  const seq = BigInt(match[2]!);
  return ms <= U64_MAX && seq <= U64_MAX ? [ms, seq] : undefined;
}

/** The smallest id after `id` (an inclusive XRANGE start, which works before Redis 6.2's `(`); null when none can follow. */
function successor([ms, seq]: [bigint, bigint]): string | null {
  if (seq < U64_MAX) return `${ms}-${seq + 1n}`;
  if (ms < U64_MAX) return `${ms + 1n}-0`;
  return null;
}

/** The entry's event, or undefined when it is not one (never thrown: one bad entry must not stall the feed). */
function decodeEntry(fields: string[]): RevocationEvent | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'e') return decodeRevocationEvent(fields[i + 1]!);
  }
  return undefined;
}

export class RedisRevocationLog implements RevocationLog {
  readonly #redis: RedisClient;
  readonly #key: string;
  readonly #append: AppendCall;
  /** blocking connections not in use */
  readonly #idle: RedisClient[] = [];
  /** every blocking connection, in use or not */
  readonly #blocking = new Set<RedisClient>();
  #closed = false;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#key = keys.revocations();
    redis.defineCommand('mcpAuthzRevocationAppend', { numberOfKeys: 1, lua: APPEND });
    const fn = (redis as unknown as Record<string, AppendCall>)['mcpAuthzRevocationAppend'];
    if (typeof fn !== 'function') throw new Error('ioredis did not define mcpAuthzRevocationAppend');
    this.#append = (...args) => fn.apply(redis, args);
  }

  async append(event: RevocationEvent): Promise<string> {
    if (typeof event.until !== 'number' || !Number.isFinite(event.until)) {
      throw new TypeError('a revocation event needs a finite `until` (epoch seconds)');
    }
    const keepMs = Math.min(Math.max(0, Math.ceil(event.until * 1000 - Date.now())), MAX_KEEP_MS) + KEY_GRACE_MS;
    const id = await this.#append(this.#key, JSON.stringify(event), STREAM_MAX_LENGTH, keepMs);
    if (typeof id !== 'string') throw new Error(`unexpected XADD reply ${typeof id}`);
    return id;
  }

  async readAfter(afterId: string | undefined, limit: number, waitMs?: number): Promise<RevocationEntry[]> {
    const max = Math.min(Math.floor(limit), MAX_BATCH);
    if (!(max >= 1) || this.#closed) return [];
    const after = parseStreamId(afterId);
    // the id read through so far (everything up to it is either returned or expired)
    let cursor = after ? `${after[0]}-${after[1]}` : '0-0';
    let start = after ? successor(after) : '-';
    const entries: RevocationEntry[] = [];
    const now = nowSeconds();
    while (start !== null && entries.length < max) {
      const want = max - entries.length;
      const page = await this.#redis.xrange(this.#key, start, '+', 'COUNT', want);
      for (const [id, fields] of page) {
        cursor = id;
        const event = decodeEntry(fields);
        if (event && event.until > now) entries.push({ id, event });
      }
      if (page.length < want) break;
      start = successor(parseStreamId(cursor)!);
    }
    if (entries.length > 0 || waitMs === undefined || !(waitMs > 0)) return entries;

    const deadline = Date.now() + waitMs;
    for (;;) {
      const remaining = Math.ceil(deadline - Date.now());
      if (remaining <= 0 || this.#closed) return [];
      const page = await this.#blockingRead(cursor, max, remaining);
      if (page === undefined) return [];
      const nowAfterWait = nowSeconds();
      for (const [id, fields] of page) {
        cursor = id;
        const event = decodeEntry(fields);
        if (event && event.until > nowAfterWait) entries.push({ id, event });
      }
      if (entries.length > 0) return entries;
    }
  }

  async prune(nowSecondsValue: number): Promise<void> {
    // XDEL of exactly the expired entries: entries arrive only roughly in `until` order,
    // so trimming a prefix could drop one still in force. An entry's `until` never changes,
    // so deleting by id is safe against concurrent appends and prunes.
    let start = '-';
    for (;;) {
      const page = await this.#redis.xrange(this.#key, start, '+', 'COUNT', PRUNE_PAGE);
      const expired: string[] = [];
      for (const [id, fields] of page) {
        const event = decodeEntry(fields);
        if (event && event.until <= nowSecondsValue) expired.push(id);
      }
      if (expired.length > 0) await this.#redis.xdel(this.#key, ...expired);
      const last = page[page.length - 1];
      if (page.length < PRUNE_PAGE || !last) return;
      const next = successor(parseStreamId(last[0])!);
      if (next === null) return;
      start = next;
    }
  }

  /** Ends pending waits (they answer []) and closes the blocking connections. */
  close(): void {
    this.#closed = true;
    for (const connection of this.#blocking) connection.disconnect();
    this.#blocking.clear();
    this.#idle.length = 0;
  }

  /**
   * `XREAD COUNT limit BLOCK ms` after `cursor` on a dedicated connection: the entries,
   * or undefined on timeout, close, or a read that overran its time (its connection,
   * possibly stuck in a reconnect, is dropped rather than reused).
   */
  async #blockingRead(cursor: string, limit: number, blockMs: number): Promise<RawEntry[] | undefined> {
    const connection = this.#idle.pop() ?? this.#connect();
    let timer: NodeJS.Timeout | undefined;
    let overran = false;
    const guard = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        overran = true;
        resolve(undefined);
      }, blockMs + BLOCK_GRACE_MS);
    });
    const read = connection.xread('COUNT', limit, 'BLOCK', blockMs, 'STREAMS', this.#key, cursor);
    // once abandoned (overran, closed), its eventual rejection is of no interest
    read.catch(() => {});
    try {
      const reply = await Promise.race([read, guard]);
      if (reply === undefined || reply === null) return undefined;
      return reply.find(([key]) => key === this.#key)?.[1] ?? [];
    } catch (err) {
      if (this.#closed) return undefined;
      overran = true;
      throw err;
    } finally {
      clearTimeout(timer);
      if (overran || this.#closed) {
        this.#blocking.delete(connection);
        connection.disconnect();
      } else {
        this.#idle.push(connection);
      }
    }
  }

  #connect(): RedisClient {
    // a blocking read waits longer than the store's command timeout, and has its own guard
    const connection = duplicateForBlocking(this.#redis);
    // without a listener ioredis prints connection errors to stderr; failures surface as rejected reads
    connection.on('error', () => {});
    this.#blocking.add(connection);
    return connection;
  }
}
