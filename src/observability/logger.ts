/**
 * The application logger (pino, JSON lines on standard output — standard error when the
 * audit log is written to standard output, so the two never mix). Anything that could carry
 * a secret is censored by key name at any depth (plain objects, arrays and errors are walked,
 * see {@link redactCredentials}), and request logs carry only method, path and status: never a
 * query string, body, cookie or Authorization header.
 */
import { pino, type Logger } from 'pino';
import { isoNow } from './iso-now.js';

export type { Logger };

/** Keys whose values are censored wherever they occur in a logged object (compared lower-cased). */
export const CREDENTIAL_KEYS: ReadonlySet<string> = new Set([
  'password',
  'secret',
  'client_secret',
  'token',
  'code',
  'code_verifier',
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'refresh_token',
  'access_token',
  'id_token',
  'user_code',
  'device_code',
  'client_assertion',
  'registration_access_token',
]);

export const CENSOR = '[redacted]';

const isCredentialKey = (key: string) => CREDENTIAL_KEYS.has(key) || CREDENTIAL_KEYS.has(key.toLowerCase());

/**
 * `value` with every credential key's value censored, at any depth. Plain objects, arrays and
 * errors are walked (other class instances are left alone); nothing is copied unless something
 * in it is censored (a censored container is a shallow copy, errors keep their prototype,
 * message, stack and cause), and a cycle is not followed twice. Cost: one pass over the logged
 * object's own keys.
 */
export function redactCredentials<T>(value: T): T {
  return walk(value, new Set()) as T;
}

function walk(value: unknown, ancestors: Set<object>): unknown {
  if (value === null || typeof value !== 'object') return value;
  // a copy must not lead back to the original, whose credentials are not censored
  if (ancestors.has(value)) return '[Circular]';
  if (Array.isArray(value)) {
    ancestors.add(value);
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const redacted = walk(item, ancestors);
      if (redacted !== item) (copy ??= value.slice())[i] = redacted;
    }
    ancestors.delete(value);
    return copy ?? value;
  }
  const proto = Object.getPrototypeOf(value) as object | null;
  const isError = value instanceof Error;
  if (proto !== Object.prototype && proto !== null && !isError) return value;
  ancestors.add(value);
  let changes: Record<string, unknown> | undefined;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const item = record[key];
    if (isCredentialKey(key)) {
      if (item !== undefined && item !== null && item !== CENSOR) (changes ??= {})[key] = CENSOR;
      continue;
    }
    const redacted = walk(item, ancestors);
    if (redacted !== item) (changes ??= {})[key] = redacted;
  }
  // an error's cause (not enumerable) is logged too, with its message and stack
  if (isError && 'cause' in value) {
    const redacted = walk(value.cause, ancestors);
    if (redacted !== value.cause) (changes ??= {}).cause = redacted;
  }
  ancestors.delete(value);
  if (!changes) return value;
  if (isError) {
    const copy = Object.create(proto) as Record<string, unknown>;
    Object.defineProperties(copy, Object.getOwnPropertyDescriptors(value));
    for (const [key, item] of Object.entries(changes)) Object.defineProperty(copy, key, { value: item, enumerable: key !== 'cause', writable: true, configurable: true });
    return copy;
  }
  return { ...record, ...changes };
}

const BASE = { service: 'mcp-authz' };

/**
 * The logger. Without a destination it writes to file descriptor `fd` (standard output by
 * default), each line at once with a synchronous write (pino's default): lines other than the
 * request lines are few, and the request lines go out a turn of the event loop at a time
 * ({@link requestLineWriter}). An asynchronous destination cost more: every write a round trip
 * through libuv's thread pool, on the same core as the server (docs/performance.md).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, { fd = 1 }: { fd?: 1 | 2 } = {}): Logger {
  const log = pino(
    {
      level,
      base: BASE,
      // the merging object of each line
      formatters: { log: (object) => redactCredentials(object) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    (destination as pino.DestinationStream | undefined) ?? pino.destination({ dest: fd, sync: true }),
  );
  // and the bindings of child loggers (pino passes those to no formatter of ours); children
  // inherit this `child`, so grandchildren's bindings are censored too
  const child = log.child as unknown as (this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => Logger;
  log.child = function (this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) {
    return child.call(this, redactCredentials(bindings), options);
  } as unknown as Logger['child'];
  return log;
}

/** Writes the one line per request: its id, method, path (without query), status and duration. */
export type RequestLineWriter = (requestId: string, method: string, path: string, status: number, ms: number) => void;

/**
 * The one line per request, written to the log's destination as pino would write it at `info`
 * (`{"level":30,"time":…,"service":"mcp-authz","requestId":…,"method":…,"path":…,"status":…,"ms":…,"msg":"request"}`),
 * but built as one string: its fields are fixed and never secret (the request id, the method, the
 * path without its query, the status, the duration), so there is nothing to redact or to walk,
 * and the strings among them are JSON-escaped. The lines of one turn of the event loop (the
 * requests it answered) go out together at its end, in one write; a process killed meanwhile
 * loses that turn's lines. Nothing is written when `info` is below the log's level.
 */
export function requestLineWriter(log: Logger): RequestLineWriter {
  if (!log.isLevelEnabled('info')) return () => {};
  const stream = (log as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym]!;
  const level = log.levels.values.info;
  const service = JSON.stringify(BASE.service);
  let pending = '';
  const flush = () => {
    const lines = pending;
    pending = '';
    stream.write(lines);
  };
  return (requestId, method, path, status, ms) => {
    if (pending === '') setImmediate(flush);
    pending += `{"level":${level},"time":"${isoNow()}","service":${service},"requestId":${JSON.stringify(requestId)},"method":${JSON.stringify(method)},"path":${JSON.stringify(path)},"status":${status},"ms":${ms},"msg":"request"}\n`;
  };
}
