/**
 * The audit log: validates events, chains them (src/audit/record.ts), writes them to the
 * configured sink and checkpoints each chain's head in the store (src/audit/checkpoints.ts).
 *
 * One chain per writer process (each server replica, each CLI invocation): records of one
 * chain are written one after another from a promise queue, so `seq` and `prev` never race.
 * `record()` never throws and never waits: it validates, stamps the time and queues.
 * Nothing is written, opened or stored until the first record: a server that records nothing
 * leaves no trace.
 */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Store } from '../../adapters/contract.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { auditEventSchema, FORBIDDEN_DETAIL_KEYS, type AuditEvent, type AuditLog } from './events.js';
import { CheckpointWriter, registerChain } from './checkpoints.js';
import { genesisHash, RECORD_FORMAT, recordHash, serializeRecord } from './record.js';
import { auditDir, FileSink, RedisStreamSink, StreamSink, streamKey, type AuditSink } from './sinks.js';

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
  const parsed = auditEventSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const path = [...issue.path, ...(keys.length ? [keys[0]!] : [])].map(String).join('.');
    return { ok: false, field: path || '(event)', reason: issue.code === 'unrecognized_keys' ? 'not an audit event field' : issue.message };
  }
  const event = parsed.data;
  for (const key of Object.keys(event.details ?? {})) {
    if (FORBIDDEN_DETAIL_KEYS.test(key)) return { ok: false, field: `details.${key}`, reason: 'a credential-like key is never recorded' };
  }
  const strings: [string, unknown][] = [
    ['actor', event.actor],
    ['client', event.client],
    ['resource', event.resource],
    ['requestId', event.requestId],
    ['source', event.source],
    ...Object.entries(event.details ?? {}).map(([k, v]): [string, unknown] => [`details.${k}`, v]),
  ];
  for (const [field, value] of strings) {
    const values = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === 'string' && JWT_LIKE.test(v))) return { ok: false, field, reason: 'the value looks like a token' };
  }
  return { ok: true, event };
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
  const sink = options.sink ?? configuredSink(config, chain, options.out, onRotationError);
  const checkpoints = new CheckpointWriter(store.settings, chain);
  const every = config.audit.checkpointEvery;

  let seq = 0;
  let prev = genesisHash(chain);
  let lastCheckpoint = 0;
  let registered = false;
  /** records not written since the last record that was (written into the next one) */
  let lost = 0;
  let pending = 0;
  let queue: Promise<void> = Promise.resolve();
  let closing: Promise<void> | undefined;
  // one log line per failure burst
  let writeFailing = false;
  let lostInBurst = 0;
  let checkpointFailing = false;

  const writeFailed = (err: unknown) => {
    lost++;
    lostInBurst++;
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

  async function write(event: AuditEvent, time: string): Promise<void> {
    // a JSON round trip: what is hashed is exactly what a reader parses back
    const body = JSON.parse(
      JSON.stringify({ audit: RECORD_FORMAT, time, ...event, chain, seq: seq + 1, ...(lost ? { lost } : {}), prev }),
    ) as Record<string, unknown>;
    const hash = recordHash(body);
    try {
      await sink.write(`${serializeRecord({ ...body, hash })}\n`);
    } catch (err) {
      writeFailed(err);
      return;
    }
    seq++;
    prev = hash;
    lost = 0;
    if (writeFailing) {
      log.warn({ event: 'audit.write_resumed', chain, seq, lost: lostInBurst }, 'audit writes work again');
      writeFailing = false;
      lostInBurst = 0;
    }
    if (!registered || seq - lastCheckpoint >= every) await checkpoint(false);
  }

  async function flush(): Promise<void> {
    let current: Promise<void>;
    do {
      current = queue;
      await current;
    } while (current !== queue);
  }

  return {
    chain,
    record(input: AuditEvent): void {
      try {
        const name = typeof (input as { event?: unknown })?.event === 'string' ? String((input as { event: string }).event).slice(0, 64) : undefined;
        if (closing) {
          log.warn({ event: 'audit.refused', auditEvent: name, field: '(log)', reason: 'the audit log is closed' }, 'audit event refused');
          return;
        }
        const checked = checkAuditEvent(input);
        if (!checked.ok) {
          log.warn({ event: 'audit.refused', auditEvent: name, field: checked.field, reason: checked.reason }, 'audit event refused');
          return;
        }
        if (pending >= MAX_PENDING) {
          writeFailed(new Error(`more than ${MAX_PENDING} audit records waiting to be written`));
          return;
        }
        const time = new Date().toISOString();
        pending++;
        queue = queue
          .then(() => write(checked.event, time))
          .catch((err: unknown) => writeFailed(err))
          .finally(() => {
            pending--;
          });
      } catch (err) {
        // record() never throws into a request
        log.error({ event: 'audit.record_failed', err: { message: (err as Error)?.message } }, 'audit record failed');
      }
    },
    flush,
    close(): Promise<void> {
      closing ??= (async () => {
        await flush();
        if (seq > 0) await checkpoint(true);
        await sink.close().catch((err: Error) => log.warn({ event: 'audit.close_failed', err: { message: err.message } }, 'could not close the audit sink'));
      })();
      return closing;
    },
  };
}

function configuredSink(config: Config, chain: string, out: NodeJS.WritableStream | undefined, onRotationError: (err: Error) => void): AuditSink {
  switch (config.audit.sink) {
    case 'file':
      return new FileSink(auditDir(config.dataDir), config.audit.maxFileBytes, chain, onRotationError);
    case 'stdout':
      return new StreamSink(out ?? process.stdout);
    case 'redis':
      if (!config.redisUrl) throw new Error('audit.sink is "redis" but redisUrl is not set');
      return new RedisStreamSink(config.redisUrl, streamKey(config.redisKeyPrefix));
  }
}
