/**
 * The Redis store: for several replicas sharing state, on one Redis server, a master found
 * through Sentinel, or a Redis Cluster (connection.ts).
 *
 * One store object survives a Redis restart: the client reconnects by itself (every 50 ms at
 * first, at most every 500 ms, so service is back within a second of Redis), and commands
 * issued while it reconnects wait in the offline queue — but only through one reconnect
 * attempt, and a command Redis does not answer within {@link COMMAND_TIMEOUT_MS} fails: while
 * Redis is down, requests fail fast (503, src/http/error-boundary.ts) instead of hanging.
 * `ping()` fails at once when the connection is down and times out when Redis does not answer.
 */
import { StoreError, type ModelAdapter, type Store } from '../contract.js';
import { RedisAccountStore } from './accounts.js';
import { RedisClientDirectory } from './clients.js';
import { createRedisClient, describeRedis, type RedisClient, type RedisConnection } from './connection.js';
import { RedisGrantDirectory } from './grants.js';
import { RedisKeys } from './keys.js';
import { RedisRateCounters } from './limits.js';
import { RedisModelAdapter } from './model-adapter.js';
import { RedisRevocationLog } from './revocations.js';
import { RedisRefreshRotations } from './rotations.js';
import { RedisScripts } from './scripts.js';
import { RedisSettingsStore } from './settings.js';
import { RedisToolApprovalStore } from './tool-approvals.js';

/** A command Redis has not answered by then fails (the blocking reads of the revocation log excepted). */
export const COMMAND_TIMEOUT_MS = 2000;

export interface RedisStoreOptions {
  connection: RedisConnection;
  keyPrefix: string;
  /** how long opening may take before it fails; default 5000 ms */
  connectTimeoutMs?: number;
  /** how long `ping()` waits for PONG; default 2000 ms */
  pingTimeoutMs?: number;
}

export interface RedisStore extends Store {
  readonly kind: 'redis';
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Rejects with `onTimeout()` when `promise` has not settled within `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class RedisStoreImpl implements RedisStore {
  readonly kind = 'redis' as const;
  readonly accounts: RedisAccountStore;
  readonly settings: RedisSettingsStore;
  readonly revocations: RedisRevocationLog;
  readonly clients: RedisClientDirectory;
  readonly rotations: RedisRefreshRotations;
  readonly grants: RedisGrantDirectory;
  readonly limits: RedisRateCounters;
  readonly toolApprovals: RedisToolApprovalStore;
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts;
  readonly #where: string;
  readonly #pingTimeoutMs: number;
  readonly #models = new Map<string, RedisModelAdapter>();
  readonly #lastError: () => Error | undefined;

  constructor(redis: RedisClient, keys: RedisKeys, where: string, pingTimeoutMs: number, lastError: () => Error | undefined) {
    this.#redis = redis;
    this.#keys = keys;
    this.#scripts = new RedisScripts(redis);
    this.#where = where;
    this.#pingTimeoutMs = pingTimeoutMs;
    this.#lastError = lastError;
    this.accounts = new RedisAccountStore(redis, this.#keys, this.#scripts);
    this.settings = new RedisSettingsStore(redis, this.#keys, this.#scripts);
    this.revocations = new RedisRevocationLog(redis, this.#keys);
    this.clients = new RedisClientDirectory(redis, this.#keys);
    this.rotations = new RedisRefreshRotations(redis, this.#keys, this.#scripts);
    this.grants = new RedisGrantDirectory(redis, this.#keys);
    this.limits = new RedisRateCounters(redis, this.#keys);
    this.toolApprovals = new RedisToolApprovalStore(redis, this.#keys);
  }

  model(name: string): ModelAdapter {
    let adapter = this.#models.get(name);
    if (!adapter) {
      adapter = new RedisModelAdapter(name, this.#redis, this.#keys, this.#scripts);
      this.#models.set(name, adapter);
    }
    return adapter;
  }

  async ping(): Promise<void> {
    const status = this.#redis.status;
    if (status === 'end') throw new StoreError(`the Redis store for ${this.#where} is closed`);
    if (status !== 'ready') {
      const last = this.#lastError();
      throw new StoreError(`cannot reach Redis at ${this.#where}: ${last ? reason(last) : `connection ${status}`}`);
    }
    try {
      await withTimeout(
        this.#redis.ping(),
        this.#pingTimeoutMs,
        () => new StoreError(`Redis at ${this.#where} did not answer PING within ${this.#pingTimeoutMs} ms`),
      );
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`Redis at ${this.#where} failed PING: ${reason(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    // first: the blocking connections (a pending XREAD BLOCK answers [])
    this.revocations.close();
    if (this.#redis.status === 'end') return;
    if (this.#redis.status === 'ready') {
      try {
        await withTimeout(this.#redis.quit(), 1000, () => new Error('QUIT timed out'));
        return;
      } catch {
        /* fall through to a hard disconnect */
      }
    }
    this.#redis.disconnect();
  }
}

/**
 * Connects and checks the server answers. Rejects with a StoreError naming where (URL
 * redacted; Sentinels or Cluster nodes) and the cause; the half-open client is shut down so
 * it stops retrying.
 */
export async function openRedisStore(options: RedisStoreOptions): Promise<RedisStore> {
  const where = describeRedis(options.connection);
  let keys: RedisKeys;
  try {
    keys = new RedisKeys(options.keyPrefix);
  } catch (err) {
    throw new StoreError(`cannot use Redis at ${where}: ${reason(err)}`, { cause: err });
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  let lastError: Error | undefined;
  const redis = createRedisClient(options.connection, { connectTimeoutMs, commandTimeoutMs: COMMAND_TIMEOUT_MS });
  // Without a listener ioredis prints every connection error to stderr; the latest
  // one is kept instead, to explain a failing ping().
  redis.on('error', (err: Error) => {
    lastError = err;
  });
  redis.on('ready', () => {
    lastError = undefined;
  });
  try {
    await withTimeout(
      redis.connect().then(() => redis.ping()),
      connectTimeoutMs,
      () => new Error(`no answer within ${connectTimeoutMs} ms`),
    );
  } catch (err) {
    redis.disconnect();
    const cause = lastError ?? err;
    throw new StoreError(`cannot reach Redis at ${where}: ${reason(cause)}`, { cause });
  }
  return new RedisStoreImpl(redis, keys, where, options.pingTimeoutMs ?? 2000, () => lastError);
}
