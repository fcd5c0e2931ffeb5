/**
 * Where audit lines are written: a file in `<dataDir>/audit/` (rotated, never deleted),
 * standard output, or a Redis stream. A sink writes a batch of complete lines per call, all
 * of them or (rejecting) none as far as it can tell.
 */
import { mkdir, open, rename, stat, type FileHandle } from 'node:fs/promises';
import { writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient, RedisConnection } from '../../adapters/redis/connection.js';

export interface AuditSink {
  /**
   * where the records go, kept in each checkpoint so verify knows which chains it should find
   * in what it reads: `file:<host>:<directory>`, `stdout`, or `redis:<stream key>`
   */
  readonly where: string;
  /** appends lines (each ending in "\n"), in order */
  write(lines: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export const AUDIT_DIR = 'audit';
export const CURRENT_FILE = 'audit.jsonl';
/** rotated files: `audit-<ISO time without colons>-<chain>.jsonl` */
export const ROTATED_FILE = /^audit-(\d{4}-\d{2}-\d{2}T\d{6}(?:\.\d{3})?Z)-(.+)\.jsonl$/;
/** How long the file sink trusts that `audit.jsonl` is still the file it holds open. */
export const REOPEN_CHECK_MS = 1000;
/** the length cap of the Redis stream (approximate, trimmed from the oldest end) */
export const STREAM_MAXLEN = 1_000_000;

/** the error when the Redis sink is configured without Redis (the schema's descriptions name the same settings) */
export const NO_REDIS = 'audit.sink is "redis" but no Redis is configured (redisUrl, redisSentinels or redisClusterNodes)';

export function auditDir(dataDir: string): string {
  return join(dataDir, AUDIT_DIR);
}

export function streamKey(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}audit`;
}

/** The `where` of the file sink in `dir` on this host. */
export function fileWhere(dir: string): string {
  return `file:${hostname()}:${resolve(dir)}`;
}

export function streamWhere(key: string): string {
  return `redis:${key}`;
}

export const STDOUT_WHERE = 'stdout';

/** The time in a rotated file's name, as epoch ms (NaN when it is not one). */
export function rotatedAt(name: string): number {
  const match = ROTATED_FILE.exec(name);
  if (!match) return NaN;
  const compact = match[1]!;
  return Date.parse(`${compact.slice(0, 13)}:${compact.slice(13, 15)}:${compact.slice(15)}`);
}

/**
 * Appends to `<dir>/audit.jsonl` with O_APPEND, one write per batch, so several processes may
 * share the file (each write lands whole). It checks that the path is still the file it holds
 * open (another process may have rotated it) before a write, at most every
 * {@link REOPEN_CHECK_MS}: a busy server does not pay a `stat` per batch, and for that long after
 * another writer's rotation its records land in the rotated file (which `audit verify` reads
 * like any other, in the same directory). Once its count of the file's
 * size passes `maxBytes` it checks the real size and, past it, renames the file to a unique
 * rotated name; the next write starts a new one.
 *
 * A batch is written with one synchronous append: the audit log starts a batch at the end of the
 * event loop's turn (src/audit/log.ts), so it already holds the records of every request answered
 * in that turn, and a `writeSync` of a few kilobytes to a local file costs the server less CPU than
 * a round trip through libuv's thread pool (measured side by side, docs/performance.md). An earlier
 * synchronous version wrote at the first record, one record per write, and cost more. A disk that
 * hangs holds the event loop meanwhile; with asynchronous writes every audited answer waited on it
 * just the same.
 */
export class FileSink implements AuditSink {
  #file: FileHandle | undefined;
  #ino = -1;
  /** when the path was last seen to be the open file (ms, monotonic) */
  #checkedAt = 0;
  /** the file's size as of the last stat, plus what this sink wrote since */
  #size = 0;
  #wrote = false;
  #dirReady = false;
  readonly #path: string;
  readonly where: string;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly chain: string,
    /** told when a full file could not be rotated (it keeps growing meanwhile) */
    private readonly onRotationError?: (err: Error) => void,
    /** told after each rotation, and after the first write (retention, src/audit/retention.ts) */
    private readonly onRotated?: () => void,
  ) {
    this.#path = join(dir, CURRENT_FILE);
    this.where = fileWhere(dir);
  }

  async write(lines: readonly string[]): Promise<void> {
    const file = await this.#current();
    const bytes = Buffer.from(lines.join(''), 'utf8');
    const bytesWritten = writeSync(file.fd, bytes, 0, bytes.length);
    if (bytesWritten !== bytes.length) throw new Error(`short write to ${this.#path} (${bytesWritten} of ${bytes.length} bytes)`);
    this.#size += bytes.length;
    if (!this.#wrote) {
      this.#wrote = true;
      this.onRotated?.();
    }
    // the lines are written: whatever happens to the rotation, this write succeeded
    try {
      if (this.#size > this.maxBytes) {
        this.#size = (await file.stat()).size;
        if (this.#size > this.maxBytes && (await this.#rotate())) this.onRotated?.();
      }
    } catch (err) {
      await this.close().catch(() => {});
      // another writer rotated the file between our check and our rename: nothing to do
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onRotationError?.(err as Error);
    }
  }

  async close(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    await file?.close();
  }

  async #current(): Promise<FileHandle> {
    if (!this.#dirReady) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      this.#dirReady = true;
    }
    if (this.#file) {
      const now = performance.now();
      if (now - this.#checkedAt < REOPEN_CHECK_MS) return this.#file;
      const ino = await stat(this.#path).then(
        (s) => s.ino,
        () => -1,
      );
      if (ino === this.#ino) {
        this.#checkedAt = now;
        return this.#file;
      }
      await this.close();
    }
    const file = await open(this.#path, 'a', 0o600);
    this.#file = file;
    const { ino, size } = await file.stat();
    this.#ino = ino;
    this.#size = size;
    this.#checkedAt = performance.now();
    return file;
  }

  /** Renames the current file to a rotated name; false when another writer rotated it first. */
  async #rotate(): Promise<boolean> {
    // only the file this writer holds: another process may have rotated it already
    const ino = await stat(this.#path).then(
      (s) => s.ino,
      () => -1,
    );
    if (ino !== this.#ino) {
      // another writer rotated it first: the next write opens the new file
      await this.close();
      return false;
    }
    let target: string;
    for (;;) {
      target = join(this.dir, `audit-${new Date().toISOString().replace(/:/g, '')}-${this.chain}.jsonl`);
      const taken = await stat(target).then(
        () => true,
        () => false,
      );
      if (!taken) break;
      await sleep(2);
    }
    await rename(this.#path, target);
    await this.close();
    return true;
  }
}

/** One line per write on a stream (process.stdout for the server). */
export class StreamSink implements AuditSink {
  readonly where = STDOUT_WHERE;
  constructor(private readonly out: NodeJS.WritableStream) {}

  write(lines: readonly string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.out.write(lines.join(''), (err?: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {}
}

/**
 * XADD to `<prefix>audit` (capped at about {@link STREAM_MAXLEN} entries, oldest first), one
 * field `r` holding the line without its newline. Opens its own connection on first use.
 */
export class RedisStreamSink implements AuditSink {
  #redis: Promise<RedisClient> | undefined;
  readonly where: string;

  constructor(
    private readonly connection: RedisConnection,
    private readonly key: string,
  ) {
    this.where = streamWhere(key);
  }

  async write(lines: readonly string[]): Promise<void> {
    const redis = await (this.#redis ??= connectRedis(this.connection));
    if (lines.length === 1) {
      await redis.xadd(this.key, 'MAXLEN', '~', String(STREAM_MAXLEN), '*', 'r', lines[0]!.replace(/\n$/, ''));
      return;
    }
    // one round trip, in order (MULTI: no other writer's entries in between; one key, so one Cluster slot)
    const transaction = redis.multi();
    for (const line of lines) transaction.xadd(this.key, 'MAXLEN', '~', String(STREAM_MAXLEN), '*', 'r', line.replace(/\n$/, ''));
    const results = await transaction.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('the audit stream transaction was discarded');
  }

  async close(): Promise<void> {
    const pending = this.#redis;
    this.#redis = undefined;
    if (!pending) return;
    const redis = await pending.catch(() => undefined);
    if (!redis) return;
    await redis.quit().catch(() => redis.disconnect());
  }
}

/**
 * A connection of the audit log's own (ioredis loaded lazily), to one server, through
 * Sentinel or to a Cluster. Errors are reported by the commands that fail.
 */
export async function connectRedis(connection: RedisConnection): Promise<RedisClient> {
  const { createRedisClient } = await import('../../adapters/redis/connection.js');
  // as the store's client (adapters/redis/store.ts): while Redis is down, writes fail fast and are counted lost
  const redis = createRedisClient(connection, { connectTimeoutMs: 5000, commandTimeoutMs: 2000 });
  redis.on('error', () => {});
  return redis;
}
