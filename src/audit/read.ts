/**
 * Reading audit records back: from the file sink's directory (rotated files in rotation
 * order, then the current file), from files given on the command line (e.g. a collected
 * stdout, where audit lines are told apart from log lines by their `"audit"` member), or
 * from the Redis stream.
 */
import { createReadStream } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { RedisClient, RedisConnection } from '../../adapters/redis/connection.js';
import type { Config } from '../config/schema.js';
import { redisConnection } from '../config/redis.js';
import type { SettingsStore } from '../../adapters/contract.js';
import { verifyRecords, type Problem, type SourceLine, type VerifyResult } from './verify.js';
import { readCheckpoint, readCheckpoints, readPruned, type Pruned } from './checkpoints.js';
import { decodeLine } from './record.js';
import { auditDir, connectRedis, CURRENT_FILE, NO_REDIS, fileWhere, ROTATED_FILE, rotatedAt, STDOUT_WHERE, streamKey, streamWhere } from './sinks.js';

export interface Retention {
  /** the oldest entries were removed by the stream's length cap (and by nothing else) */
  trimmed: boolean;
  problems: Problem[];
  notes: string[];
}

export interface AuditSource {
  /** what is read, for messages */
  readonly description: string;
  /** log lines may be mixed in: lines without an `"audit"` member are not records */
  readonly mixed: boolean;
  /** the sink these records were written by (AuditSink.where), when known */
  readonly where?: string;
  /** every line, oldest first; with `sinceMs`, parts certainly older may be skipped (callers still filter) */
  lines(options?: { sinceMs?: number }): AsyncIterable<SourceLine>;
  /** the last `n` lines that are audit records, oldest first */
  last(n: number): Promise<string[]>;
  retention(): Promise<Retention>;
  close(): Promise<void>;
}

/**
 * Verifies everything a source holds against the store's checkpoints, as `audit verify` does:
 * checkpoints first (every checkpoint read then is at or behind the records read next), the
 * source's retention, then the records. `problems` and `notes` are all of them.
 */
export async function verifySource(source: AuditSource, settings: SettingsStore): Promise<VerifyResult> {
  const stored = await readCheckpoints(settings);
  const retention = await source.retention();
  const pruned = new Map<string, Pruned>();
  for (const chain of stored.checkpoints.keys()) {
    const marker = await readPruned(settings, chain);
    if (marker) pruned.set(chain, marker);
  }
  const result = await verifyRecords(source.lines(), stored.checkpoints, {
    mixed: source.mixed,
    trimmed: retention.trimmed,
    pruned,
    ...(source.where !== undefined ? { where: source.where } : {}),
    lateCheckpoint: (chain) => readCheckpoint(settings, chain),
  });
  return {
    ...result,
    problems: [
      ...stored.problems.map((message): Problem => ({ kind: 'checkpoint-missing', location: 'store:audit.chains', message })),
      ...retention.problems,
      ...result.problems,
    ],
    notes: [...retention.notes, ...result.notes],
  };
}

/** Records written this long before a rotation (or a stream id) may still be in it: clocks and queues. */
const SLACK_MS = 5 * 60_000;

/** A parsed audit record, or undefined for any other line. */
export function parseAuditLine(text: string): Record<string, unknown> | undefined {
  if (!text.includes('"audit"')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !('audit' in value)) return undefined;
    return value as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/**
 * A file's lines exactly as written: split at `\n` only (a `\r` stays part of its line) and
 * decoded strictly, so verify sees every byte that differs from what the writer wrote.
 */
async function* fileLines(path: string, display: string): AsyncGenerator<SourceLine> {
  const input = createReadStream(path);
  let line = 0;
  let rest = Buffer.alloc(0);
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      const buffer = rest.length ? Buffer.concat([rest, chunk]) : chunk;
      let start = 0;
      for (let i = buffer.indexOf(0x0a); i !== -1; i = buffer.indexOf(0x0a, start)) {
        yield { text: decodeLine(buffer.subarray(start, i)), location: `${display}:${++line}` };
        start = i + 1;
      }
      rest = Buffer.from(buffer.subarray(start));
    }
    if (rest.length) yield { text: decodeLine(rest), location: `${display}:${++line}` };
  } finally {
    input.destroy();
  }
}

/** Lines from the end of a file, newest first, read in chunks. */
async function* linesBackward(path: string): AsyncGenerator<string> {
  const file = await open(path, 'r');
  try {
    let position = (await file.stat()).size;
    let rest = Buffer.alloc(0);
    while (position > 0) {
      const size = Math.min(64 * 1024, position);
      position -= size;
      const chunk = Buffer.alloc(size);
      await file.read(chunk, 0, size, position);
      const buffer = Buffer.concat([chunk, rest]);
      let end = buffer.length;
      for (let i = buffer.length - 1; i >= 0; i--) {
        if (buffer[i] !== 0x0a) continue;
        if (i + 1 < end) yield buffer.subarray(i + 1, end).toString('utf8');
        end = i;
      }
      rest = Buffer.from(buffer.subarray(0, end));
    }
    if (rest.length) yield rest.toString('utf8');
  } finally {
    await file.close();
  }
}

async function lastOfFiles(paths: string[], n: number): Promise<string[]> {
  const found: string[] = [];
  for (let i = paths.length - 1; i >= 0 && found.length < n; i--) {
    for await (const text of linesBackward(paths[i]!)) {
      if (!parseAuditLine(text)) continue;
      found.push(text);
      if (found.length >= n) break;
    }
  }
  return found.reverse();
}

/** The file sink's files, oldest first: rotated files by the time in their names, then the current file. */
export async function sinkFiles(dataDir: string): Promise<string[]> {
  const dir = auditDir(dataDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const rotated = names.filter((n) => ROTATED_FILE.test(n)).sort((a, b) => rotatedAt(a) - rotatedAt(b) || (a < b ? -1 : a > b ? 1 : 0));
  return [...rotated, ...(names.includes(CURRENT_FILE) ? [CURRENT_FILE] : [])].map((n) => join(dir, n));
}

/** Files in the given order; `mixed` when they may hold other lines (a collected stdout). */
export function fileSource(
  paths: string[],
  options: { mixed: boolean; where?: string; description?: string; listFiles?: () => Promise<string[]> },
): AuditSource {
  const list = options.listFiles ?? (async () => paths);
  return {
    description: options.description ?? paths.join(', '),
    mixed: options.mixed,
    ...(options.where !== undefined ? { where: options.where } : {}),
    async *lines({ sinceMs } = {}) {
      for (const path of await list()) {
        const rotated = rotatedAt(basename(path));
        // a file rotated well before `since` holds only older records
        if (sinceMs !== undefined && rotated < sinceMs - SLACK_MS) continue;
        yield* fileLines(path, path);
      }
    },
    async last(n) {
      return lastOfFiles(await list(), n);
    },
    async retention() {
      return { trimmed: false, problems: [], notes: [] };
    },
    async close() {},
  };
}

/** The file sink's directory in `dataDir`. */
export function sinkFileSource(dataDir: string): AuditSource {
  return fileSource([], { mixed: false, where: fileWhere(auditDir(dataDir)), description: auditDir(dataDir), listFiles: () => sinkFiles(dataDir) });
}

type StreamEntry = [id: string, fields: string[]];
type StreamBufferEntry = [id: Buffer, fields: Buffer[]];

/** An entry's record, for display (`audit tail`). */
function entryText([, fields]: StreamEntry): string {
  const at = fields.indexOf('r');
  return at >= 0 && at % 2 === 0 ? (fields[at + 1] ?? '') : '';
}

/** An entry's record as stored (bytes decoded strictly, as for files). */
function entryBytesLine(key: string, [id, fields]: StreamBufferEntry): SourceLine {
  const at = fields.findIndex((field, i) => i % 2 === 0 && field.equals(RECORD_FIELD));
  return { text: at >= 0 ? decodeLine(fields[at + 1] ?? Buffer.alloc(0)) : '', location: `${key}#${id.toString('latin1')}` };
}

const RECORD_FIELD = Buffer.from('r');

/** The Redis stream `<prefix>audit`, read in pages with XRANGE. */
export function redisSource(where: RedisConnection, key: string): AuditSource {
  let connection: Promise<RedisClient> | undefined;
  const redis = () => (connection ??= connectRedis(where));
  return {
    description: `Redis stream ${key}`,
    mixed: false,
    where: streamWhere(key),
    async *lines({ sinceMs } = {}) {
      const client = await redis();
      let start = sinceMs === undefined ? '-' : String(Math.max(0, Math.floor(sinceMs - SLACK_MS)));
      for (;;) {
        const page = (await client.xrangeBuffer(key, start, '+', 'COUNT', 1000)) as StreamBufferEntry[];
        for (const entry of page) yield entryBytesLine(key, entry);
        if (page.length < 1000) return;
        start = `(${page[page.length - 1]![0].toString('latin1')}`;
      }
    },
    async last(n) {
      const client = await redis();
      const found: string[] = [];
      let end = '+';
      while (found.length < n) {
        const count = Math.min(1000, n - found.length);
        const page = (await client.xrevrange(key, end, '-', 'COUNT', count)) as StreamEntry[];
        for (const entry of page) {
          const text = entryText(entry);
          if (parseAuditLine(text)) found.push(text);
        }
        if (page.length < count) break;
        end = `(${page[page.length - 1]![0]}`;
      }
      return found.slice(0, n).reverse();
    },
    async retention() {
      const client = await redis();
      let info: unknown[];
      try {
        info = (await client.xinfo('STREAM', key)) as unknown[];
      } catch (err) {
        if (/no such key/i.test((err as Error).message)) return { trimmed: false, problems: [], notes: [] };
        throw err;
      }
      const field = (name: string) => {
        const at = info.indexOf(name);
        return at >= 0 && at % 2 === 0 ? info[at + 1] : undefined;
      };
      const length = Number(field('length'));
      const added = field('entries-added');
      const maxDeleted = field('max-deleted-entry-id');
      const problems: Problem[] = [];
      const notes: string[] = [];
      if (typeof maxDeleted === 'string' && maxDeleted !== '0-0') {
        problems.push({
          kind: 'deleted',
          location: `${key}#${maxDeleted}`,
          message: `entries were deleted from the stream with XDEL (the newest deleted entry id is ${maxDeleted}); mcp-authz never deletes entries`,
        });
      }
      // XTRIM and the XADD length cap remove the oldest entries without touching max-deleted-entry-id
      const removed = added === undefined ? 0 : Number(added) - length;
      const trimmed = removed > 0 && maxDeleted === '0-0';
      if (trimmed) notes.push(`${removed} of the oldest entries of ${key} were removed by its length cap (retention)`);
      return { trimmed, problems, notes };
    },
    async close() {
      const pending = connection;
      connection = undefined;
      const client = await pending?.catch(() => undefined);
      await client?.quit().catch(() => client.disconnect());
    },
  };
}

function configuredWhere(config: Config): string {
  if (config.audit.sink === 'file') return fileWhere(auditDir(config.dataDir));
  if (config.audit.sink === 'redis') return streamWhere(streamKey(config.redisKeyPrefix));
  return STDOUT_WHERE;
}

export class SourceUsageError extends Error {
  override readonly name = 'SourceUsageError';
}

/** The configured sink read back, or the files given (`--file`), which may mix in log lines. */
export function openAuditSource(config: Config, files: string[]): AuditSource {
  // files given: copies of the configured sink's records, or its collected stdout
  if (files.length) return fileSource(files, { mixed: true, where: configuredWhere(config) });
  switch (config.audit.sink) {
    case 'file':
      return sinkFileSource(config.dataDir);
    case 'redis': {
      const connection = redisConnection(config);
      if (!connection) throw new SourceUsageError(NO_REDIS);
      return redisSource(connection, streamKey(config.redisKeyPrefix));
    }
    case 'stdout':
      throw new SourceUsageError('the audit sink is stdout: give --file FILE with the collected output');
  }
}
