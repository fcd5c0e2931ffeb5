/**
 * The audit log: validates events, chains them (src/audit/record.ts), writes them to the
 * configured sink and checkpoints each chain's head in the store (src/audit/checkpoints.ts).
 *
 * One chain per writer process (each server replica, each CLI invocation). Records are written
 * in batches (group commit): what is recorded while a batch is being written goes out in the
 * next one, in a single sink write, so `seq` and `prev` never race and a busy server makes one
 * write for many records. `record()` never throws and never waits: it validates, stamps the
 * time and queues; `written()` is what a request awaits before answering, so that a record of
 * what the client is told is written first (src/http/audit-barrier.ts).
 * Nothing is written, opened or stored until the first record: a server that records nothing
 * leaves no trace.
 */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Store } from '../../adapters/contract.js';
import type { Config } from '../config/schema.js';
import { redisConnection } from '../config/redis.js';
import type { Logger } from '../observability/logger.js';
import { isoNow } from '../observability/iso-now.js';
import { auditEventSchema, FORBIDDEN_DETAIL_KEYS, plainAuditEvent, type AuditEvent, type AuditLog } from './events.js';
import { CheckpointWriter, registerChain } from './checkpoints.js';
import { pruneAuditFiles } from './retention.js';
import { genesisHash, RECORD_FORMAT, sealAuditRecord } from './record.js';
import { auditDir, FileSink, NO_REDIS, RedisStreamSink, StreamSink, streamKey, type AuditSink } from './sinks.js';

export interface AuditLogOptions {
  config: Config;
  store: Store;
  log: Logger;
  /** where the stdout sink writes; default process.stdout (the CLI passes its stderr, keeping its own output clean) */
  out?: NodeJS.WritableStream;
  /** put before the host name in the chain id, e.g. "cli" → `cli-<host>-<random>` */
  role?: string;
  /** a sink to use instead of the configured one (tests) */
  sink?: AuditSink;
}

/** The audit log with its chain id (what verify reports problems under). */
export interface ChainedAuditLog extends AuditLog {
  readonly chain: string;
  /** records accepted and not yet written, and how long the oldest of them has waited (metrics) */
  backlog(): { pending: number; oldestMs: number };
}

/** Records queued but not yet written beyond this are dropped (and counted as lost in the next record). */
const MAX_PENDING = 10_000;
/** A value that looks like a JWT (a token) is never recorded, whatever its field. */
const JWT_LIKE = /^eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\./;

/** `[<role>-]<host>-<12 hex>`, reduced to characters safe in file names and store keys. */
export function newChainId(role?: string, host: string = hostname()): string {
  const name = `${role ? `${role}-` : ''}${host}`;
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 60) || 'host';
  return `${safe}-${randomBytes(6).toString('hex')}`;
}

/** The actor of command-line actions: `cli:<operating system user>`. */
export function cliActor(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER ?? 'unknown';
  }
  return `cli:${user || 'unknown'}`;
}

type Checked = { ok: true; event: AuditEvent } | { ok: false; field: string; reason: string };

/** Schema, then the guards against a credential slipping in. Never echoes a value. */
export function checkAuditEvent(input: unknown): Checked {
  const plain = plainAuditEvent(input);
  const parsed = plain ? ({ success: true, data: plain } as const) : auditEventSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const path = [...issue.path, ...(keys.length ? [keys[0]!] : [])].map(String).join('.');
    return { ok: false, field: path || '(event)', reason: issue.code === 'unrecognized_keys' ? 'not an audit event field' : issue.message };
  }
  const event = parsed.data;
  const details = event.details ?? {};
  const detailKeys = Object.keys(details);
  for (const key of detailKeys) {
    if (FORBIDDEN_DETAIL_KEYS.test(key)) return { ok: false, field: `details.${key}`, reason: 'a credential-like key is never recorded' };
  }
  for (const field of TOP_STRING_FIELDS) {
    if (looksLikeToken(event[field])) return { ok: false, field, reason: 'the value looks like a token' };
  }
  for (const key of detailKeys) {
    if (looksLikeToken(details[key])) return { ok: false, field: `details.${key}`, reason: 'the value looks like a token' };
  }
  return { ok: true, event };
}

/** What a refusal names the refused event by (worked out only for a refusal). */
function eventName(input: unknown): string | undefined {
  const event = (input as { event?: unknown } | undefined)?.event;
  return typeof event === 'string' ? event.slice(0, 64) : undefined;
}

/** The event's own string fields, in the order a refusal names the first offending one. */
const TOP_STRING_FIELDS = ['actor', 'client', 'resource', 'requestId', 'source'] as const;

/** A string, or a list holding one, that looks like a JWT. */
function looksLikeToken(value: unknown): boolean {
  if (typeof value === 'string') return JWT_LIKE.test(value);
  if (!Array.isArray(value)) return false;
  for (const item of value as unknown[]) if (typeof item === 'string' && JWT_LIKE.test(item)) return true;
  return false;
}

export function createAuditLog(options: AuditLogOptions): ChainedAuditLog {
  const { config, store, log } = options;
  const chain = newChainId(options.role);
  let rotationFailing = false;
  const onRotationError = (err: Error) => {
    if (rotationFailing) return;
    rotationFailing = true;
    log.error({ event: 'audit.rotation_failed', chain, err: { message: err.message } }, 'could not rotate the audit file; it keeps growing');
  };
  // retention (file sink): after a rotation, one pruning at a time, and once more for rotations meanwhile
  const retention = config.audit.retention;
  let pruning: Promise<unknown> | undefined;
  let rotatedMeanwhile = false;
  const onRotated = () => {
    if (!retention) return;
    if (pruning) {
      rotatedMeanwhile = true;
      return;
    }
    pruning = (async () => {
      do {
        rotatedMeanwhile = false;
        await pruneAuditFiles(auditDir(config.dataDir), retention, store.settings, log);
      } while (rotatedMeanwhile);
    })().finally(() => (pruning = undefined));
  };
  const sink = options.sink ?? configuredSink(config, chain, options.out, onRotationError, onRotated);
  const checkpoints = new CheckpointWriter(store.settings, chain);
  const every = config.audit.checkpointEvery;

  let seq = 0;
  let prev = genesisHash(chain);
  let lastCheckpoint = 0;
  let registered = false;
  /** records not written since the last record that was (written into the next one) */
  let lost = 0;
  /** records accepted so far */
  let recorded = 0;
  /** records accepted and not yet written: the next batch */
  let waiting: Batch | undefined;
  /** the batch being written */
  let writing: Batch | undefined;
  /** a drain is due at the end of this turn of the event loop */
  let starting = false;
  let closing: Promise<void> | undefined;
  // one log line per failure burst
  let writeFailing = false;
  let lostInBurst = 0;
  let checkpointFailing = false;

  const writeFailed = (err: unknown, count = 1) => {
    lost += count;
    lostInBurst += count;
    if (writeFailing) return;
    writeFailing = true;
    log.error({ event: 'audit.write_failed', sink: config.audit.sink, chain, err: { message: (err as Error)?.message ?? String(err) } }, 'audit write failed; records are lost until writing works again');
  };

  async function checkpoint(closed: boolean): Promise<void> {
    try {
      await checkpoints.write({ seq, hash: prev, time: new Date().toISOString(), ...(closed ? { closed: true } : {}), where: sink.where });
      if (!registered) {
        await registerChain(store.settings, chain);
        registered = true;
      }
      lastCheckpoint = seq;
      if (checkpointFailing) log.info({ event: 'audit.checkpoint_resumed', chain, seq }, 'audit checkpoints are written again');
      checkpointFailing = false;
    } catch (err) {
      if (checkpointFailing) return;
      checkpointFailing = true;
      log.error({ event: 'audit.checkpoint_failed', chain, seq, err: { message: (err as Error).message } }, 'could not store the audit checkpoint');
    }
  }

  /**
   * Chains and writes a batch in one sink write (group commit): what arrived while the previous
   * batch was being written goes out together. On failure none of the batch is in the chain.
   */
  async function write(records: Queued[]): Promise<void> {
    const lines: string[] = [];
    let nextSeq = seq;
    let nextPrev = prev;
    // records dropped meanwhile are counted in the next batch
    const counted = lost;
    let nextLost = lost;
    for (const { event, time } of records) {
      // the event passed the schema: plain strings, finite numbers, booleans and string lists,
      // which a reader parses back to exactly what is hashed here
      const { hash, line } = sealAuditRecord({ audit: RECORD_FORMAT, time, ...event, chain, seq: nextSeq + 1, ...(nextLost ? { lost: nextLost } : {}), prev: nextPrev });
      lines.push(`${line}\n`);
      nextSeq++;
      nextPrev = hash;
      nextLost = 0;
    }
    try {
      await sink.write(lines);
    } catch (err) {
      writeFailed(err, records.length);
      return;
    }
    seq = nextSeq;
    prev = nextPrev;
    lost -= counted;
    if (writeFailing) {
      log.warn({ event: 'audit.write_resumed', chain, seq, lost: lostInBurst }, 'audit writes work again');
      writeFailing = false;
      lostInBurst = 0;
    }
    if (!registered || seq - lastCheckpoint >= every) await checkpoint(false);
  }

  /** Writes batch after batch while records keep arriving. */
  async function drain(): Promise<void> {
    while (waiting) {
      writing = waiting;
      waiting = undefined;
      try {
        await write(writing.records);
      } catch (err) {
        writeFailed(err, writing.records.length);
      }
      writing.done();
      writing = undefined;
    }
  }

  async function flush(): Promise<void> {
    while (waiting ?? writing) await (waiting ?? writing)!.written;
  }

  return {
    chain,
    get recorded() {
      return recorded;
    },
    record(input: AuditEvent): void {
      try {
        if (closing) {
          log.warn({ event: 'audit.refused', auditEvent: eventName(input), field: '(log)', reason: 'the audit log is closed' }, 'audit event refused');
          return;
        }
        const checked = checkAuditEvent(input);
        if (!checked.ok) {
          log.warn({ event: 'audit.refused', auditEvent: eventName(input), field: checked.field, reason: checked.reason }, 'audit event refused');
          return;
        }
        if ((waiting?.records.length ?? 0) + (writing?.records.length ?? 0) >= MAX_PENDING) {
          writeFailed(new Error(`more than ${MAX_PENDING} audit records waiting to be written`));
          return;
        }
        waiting ??= newBatch();
        waiting.records.push({ event: checked.event, time: isoNow() });
        recorded++;
        if (!writing && !starting) {
          // the batch starts once the I/O callbacks of this turn of the event loop have run, so
          // that the records of every request they answered go out in one write
          starting = true;
          setImmediate(() => {
            starting = false;
            void drain();
          });
        }
      } catch (err) {
        // record() never throws into a request
        log.error({ event: 'audit.record_failed', err: { message: (err as Error)?.message } }, 'audit record failed');
      }
    },
    written(): Promise<void> {
      return (waiting ?? writing)?.written ?? Promise.resolve();
    },
    backlog() {
      const pending = (writing?.records.length ?? 0) + (waiting?.records.length ?? 0);
      const oldest = (writing ?? waiting)?.records[0]?.time;
      return { pending, oldestMs: oldest ? Math.max(0, Date.now() - Date.parse(oldest)) : 0 };
    },
    flush,
    close(): Promise<void> {
      closing ??= (async () => {
        await flush();
        await pruning;
        if (seq > 0) await checkpoint(true);
        await sink.close().catch((err: Error) => log.warn({ event: 'audit.close_failed', err: { message: err.message } }, 'could not close the audit sink'));
      })();
      return closing;
    },
  };
}

interface Queued {
  event: AuditEvent;
  time: string;
}

/** Records written together, and the promise their requests wait on. */
interface Batch {
  records: Queued[];
  written: Promise<void>;
  done(): void;
}

function newBatch(): Batch {
  let done!: () => void;
  const written = new Promise<void>((resolve) => (done = resolve));
  return { records: [], written, done };
}

function configuredSink(config: Config, chain: string, out: NodeJS.WritableStream | undefined, onRotationError: (err: Error) => void, onRotated: () => void): AuditSink {
  switch (config.audit.sink) {
    case 'file':
      return new FileSink(auditDir(config.dataDir), config.audit.maxFileBytes, chain, onRotationError, onRotated);
    case 'stdout':
      return new StreamSink(out ?? process.stdout);
    case 'redis': {
      const connection = redisConnection(config);
      if (!connection) throw new Error(NO_REDIS);
      return new RedisStreamSink(connection, streamKey(config.redisKeyPrefix));
    }
  }
}
