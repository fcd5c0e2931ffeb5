/**
 * Opens the configured store: Redis when a connection is given (one server, Sentinel or
 * Cluster: adapters/redis/connection.ts), else SQLite in the data directory.
 *
 * The driver module is imported lazily so a process using one store never loads the
 * other's native addon (better-sqlite3) or client (ioredis): a Redis deployment does not
 * need a working SQLite build, and the CLI starts faster.
 */
import { StoreError, type Store } from './contract.js';
import type { RedisConnection } from './redis/connection.js';

export type { RedisConnection, RedisNode } from './redis/connection.js';

export interface OpenStoreOptions {
  dataDir: string;
  /** where Redis is; undefined: the SQLite store */
  redis?: RedisConnection | undefined;
  redisKeyPrefix: string;
}

/** Rejects with a StoreError saying what could not be opened and where (credentials redacted). */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  try {
    if (options.redis) {
      const { openRedisStore } = await import('./redis/store.js');
      return await openRedisStore({ connection: options.redis, keyPrefix: options.redisKeyPrefix });
    }
    const { openSqliteStore } = await import('./sqlite/store.js');
    return await openSqliteStore({ dataDir: options.dataDir });
  } catch (err) {
    if (err instanceof StoreError) throw err;
    const what = options.redis ? 'the Redis store' : 'the SQLite store';
    // the drivers are optional dependencies: an install without them says so plainly
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
      const driver = options.redis ? 'ioredis' : 'better-sqlite3';
      throw new StoreError(`${what} needs the optional dependency ${driver}: install mcp-authz without --omit=optional`, { cause: err });
    }
    // e.g. the native addon failed to load: say which store, never the URL's secrets.
    throw new StoreError(`cannot load ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
