/**
 * Tool call reports: every `tools/call` the verifier let through becomes one record (who, which
 * tool, the arguments' digest and a redacted copy, the outcome, how long it took), handed to
 * the authorization server's `tool_executions_endpoint` for its audit log, or to the MCP
 * server's own log (`report: 'local'`).
 *
 * - The adapters call {@link toolCallsIn} when the guard lets a POST through, then
 *   {@link ToolCallReporter.finish} with the outcome they observed; recording is synchronous
 *   and cheap: the response is never delayed.
 * - `'authorization-server'`: records are queued and sent in batches (HTTP Basic as
 *   `resourceServer`); what cannot be sent (network, timeout, 5xx, 429, 401) is kept in a spool
 *   file (report-spool.ts) and retried with exponential backoff, oldest first, also by the next
 *   process using the same spool directory. Entries the authorization server refuses one by one
 *   are reported through `onError`, with their id. Without a file system the queue stays in
 *   memory, bounded; what overflows is reported with a count.
 */
import { argumentsDigest, argumentsOf, reportedArguments } from './tool-arguments.js';
import { defaultSpoolDir, openSpool, type ReportSpool } from './report-spool.js';
import type { AuthInfo, FetchLike, ToolCallOptions } from './types.js';
import { unrefTimer } from './util.js';

/** One tool call as reported (the body of an entry of `POST /tool-executions`). */
export interface ToolCallRecord {
  /** random UUID; the authorization server records each id once (retries resend it) */
  id: string;
  tool: string;
  /** this MCP server (the verifier's `resource`) */
  resource: string;
  /** the person (`sub`) the token was issued for; absent for a client acting as itself */
  subject?: string;
  client_id: string;
  grant_id?: string;
  token_jti?: string;
  /** the approval the call carried (`auth.extra.approval.id`) */
  approval_id?: string;
  outcome: 'success' | 'error';
  duration_ms: number;
  /** `sha-256:` + base64url of the canonical arguments (tool-arguments.ts) */
  arguments_digest: string;
  /** canonical JSON of the arguments with sensitive values `[redacted]`, ≤ 512 characters */
  arguments?: string;
  /** ISO time the guard let the call through */
  started_at: string;
}

/** A `tools/call` under way: what the guard knew when it let it through. */
export interface ToolCallStart {
  tool: string;
  /** the JSON-RPC id the response will carry */
  rpcId: string | number | null;
  params: unknown;
  auth: AuthInfo;
  startedAt: Date;
  /** `performance.now()` when the guard passed */
  started: number;
}

const now = () => globalThis.performance?.now() ?? Date.now();

/** The `tools/call` requests in a JSON-RPC body (a message or a batch). */
export function toolCallsIn(body: unknown, auth: AuthInfo): ToolCallStart[] {
  const messages = Array.isArray(body) ? body : [body];
  const out: ToolCallStart[] = [];
  for (const message of messages) {
    if (typeof message !== 'object' || message === null || (message as { method?: unknown }).method !== 'tools/call') continue;
    const { id, params } = message as { id?: unknown; params?: unknown };
    const name = typeof params === 'object' && params !== null ? (params as { name?: unknown }).name : undefined;
    if (typeof name !== 'string' || !name) continue;
    out.push({ tool: name.slice(0, 100), rpcId: typeof id === 'string' || typeof id === 'number' ? id : null, params, auth, startedAt: new Date(), started: now() });
  }
  return out;
}

/** Bytes of a response the adapters look at for the outcome. */
export const OBSERVED_BYTES = 64 * 1024;

/**
 * The outcome of the call with JSON-RPC id `rpcId`, from the response's status and (up to
 * {@link OBSERVED_BYTES} of) its body, JSON or Server-Sent Events: `error` for a status ≥ 400, a
 * JSON-RPC error, or a result with `isError: true`.
 */
export function outcomeOf(status: number, body: string, rpcId: ToolCallStart['rpcId']): 'success' | 'error' {
  if (status >= 400) return 'error';
  const candidates: unknown[] = [];
  const trimmed = body.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) candidates.push(parse(trimmed));
  else for (const line of body.split(/\r?\n/)) if (line.startsWith('data:')) candidates.push(parse(line.slice(5).trim()));
  for (const candidate of candidates.flat()) {
    if (typeof candidate !== 'object' || candidate === null) continue;
    const message = candidate as { id?: unknown; error?: unknown; result?: { isError?: unknown } };
    if (message.id !== rpcId || !('result' in message || 'error' in message)) continue;
    return message.error !== undefined || message.result?.isError === true ? 'error' : 'success';
  }
  // cut at the observed size: the answer's own markers still tell
  return /"isError"\s*:\s*true/.test(body) ? 'error' : 'success';
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** What the reporter needs from the verifier. */
export interface ReporterContext {
  issuer: string;
  resource: string;
  resourceServer?: { clientId: string; clientSecret: string };
  options: ToolCallOptions;
  fetch: FetchLike;
  /** the AS metadata's `tool_executions_endpoint`, if it has one */
  endpointFromMetadata: () => Promise<string | undefined>;
  report: (error: Error) => void;
}

/** The verifier's tool call reporter (`verifier.toolCalls`). */
export interface ToolCallReporter {
  /** where records go: `'authorization-server'`, `'local'`, or `false` (nowhere) */
  readonly mode: 'authorization-server' | 'local' | false;
  /** Records a finished call (synchronous: the digest and the sending happen later). */
  finish(call: ToolCallStart, outcome: 'success' | 'error', sensitive?: readonly string[]): void;
  /** Sends what is queued (spooled records first) now; resolves when done or when sending failed (then it is spooled). */
  flush(): Promise<void>;
  /** Records not yet accepted by the authorization server (memory and spool). */
  readonly pending: number;
  /** Flushes (waiting at most `timeoutMs`, default 5000), spools what is left and stops the timer. */
  close(timeoutMs?: number): Promise<void>;
}

const DEFAULT_BATCH = 50;
const MAX_BATCH = 100;
const DEFAULT_INTERVAL_MS = 1000;
const REQUEST_TIMEOUT_MS = 5000;
const MAX_BACKOFF_MS = 30_000;
/** Records held in memory at most; beyond, the oldest are dropped and counted. */
const MAX_QUEUED = 10_000;

/** One JSON line on standard error (`console.error`): the default `onRecord` of `report: 'local'`. */
function stderrLine(record: ToolCallRecord): void {
  globalThis.console?.error(JSON.stringify({ event: 'tool.called', ...record }));
}

function basic(clientId: string, clientSecret: string): string {
  // RFC 6749 §2.3.1: each part form-urlencoded, then base64 (the result is ASCII)
  const form = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${btoa(`${form(clientId)}:${form(clientSecret)}`)}`;
}

/** A reporter for one verifier; `mode` from the options (default: to the AS when `resourceServer` is set, else local). */
export function createToolCallReporter(context: ReporterContext): ToolCallReporter {
  const { options } = context;
  const mode = options.report ?? (context.resourceServer ? 'authorization-server' : 'local');
  const onRecord = options.onRecord ?? (mode === 'local' ? stderrLine : undefined);

  async function build(call: ToolCallStart, outcome: 'success' | 'error', sensitive: readonly string[]): Promise<ToolCallRecord> {
    const args = argumentsOf(call.params) ?? {};
    const extra = call.auth.extra ?? {};
    const sub = typeof extra.subject === 'string' ? extra.subject : undefined;
    const grantId = typeof extra.grantId === 'string' ? extra.grantId : undefined;
    const jti = typeof extra.jti === 'string' ? extra.jti : undefined;
    const approval = extra.approval as { id?: unknown } | undefined;
    // a client acting as itself (client credentials) has no grant and its own id as `sub`
    const person = sub !== undefined && (grantId !== undefined || sub !== call.auth.clientId);
    return {
      id: crypto.randomUUID(),
      tool: call.tool,
      resource: context.resource,
      ...(person ? { subject: sub } : {}),
      client_id: call.auth.clientId,
      ...(grantId ? { grant_id: grantId } : {}),
      ...(jti ? { token_jti: jti } : {}),
      ...(typeof approval?.id === 'string' ? { approval_id: approval.id } : {}),
      outcome,
      duration_ms: Math.max(0, Math.round(now() - call.started)),
      arguments_digest: await argumentsDigest(args),
      arguments: reportedArguments(args, sensitive),
      started_at: call.startedAt.toISOString(),
    };
  }

  if (mode !== 'authorization-server') {
    return {
      mode,
      pending: 0,
      finish(call, outcome, sensitive = []) {
        if (mode === false || !onRecord) return;
        build(call, outcome, sensitive)
          .then(onRecord)
          .catch((err: unknown) => context.report(err instanceof Error ? err : new Error(String(err))));
      },
      flush: async () => undefined,
      close: async () => undefined,
    };
  }
  if (!context.resourceServer) throw new TypeError("createVerifier: \"toolCalls.report\" is 'authorization-server', which needs the resourceServer option (clientId, clientSecret)");
  return new AuthorizationServerReporter(context, onRecord, build);
}

type BuildRecord = (call: ToolCallStart, outcome: 'success' | 'error', sensitive: readonly string[]) => Promise<ToolCallRecord>;

class AuthorizationServerReporter implements ToolCallReporter {
  readonly mode = 'authorization-server' as const;
  readonly #context: ReporterContext;
  readonly #onRecord: ((record: ToolCallRecord) => void) | undefined;
  readonly #build: BuildRecord;
  readonly #batchSize: number;
  readonly #intervalMs: number;
  /** waiting to be sent, oldest first */
  #queue: ToolCallRecord[] = [];
  /** ids of queued records that are also in the spool file */
  readonly #spooled = new Set<string>();
  /** calls whose record is being built (digest) */
  #building = 0;
  #spool: Promise<ReportSpool<ToolCallRecord> | undefined> | undefined;
  #loaded = false;
  #sending: Promise<void> | undefined;
  #failures = 0;
  #retryAt = 0;
  #dropped = 0;
  #closed = false;
  readonly #timer: unknown;

  constructor(context: ReporterContext, onRecord: ((record: ToolCallRecord) => void) | undefined, build: BuildRecord) {
    this.#context = context;
    this.#onRecord = onRecord;
    this.#build = build;
    const { batchSize = DEFAULT_BATCH, flushIntervalMs = DEFAULT_INTERVAL_MS } = context.options;
    this.#batchSize = Math.min(MAX_BATCH, batchSize);
    this.#intervalMs = flushIntervalMs;
    this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
    unrefTimer(this.#timer);
    // records a previous process could not send go first
    void this.#send(false);
  }

  get pending(): number {
    return this.#queue.length + this.#building;
  }

  finish(call: ToolCallStart, outcome: 'success' | 'error', sensitive: readonly string[] = []): void {
    this.#building++;
    this.#build(call, outcome, sensitive).then(
      (record) => {
        this.#building--;
        this.#enqueue([record]);
        // after close: straight to the spool, for the next process
        if (this.#closed) void this.#spoolFile().then((spool) => this.#spoolUnsent(spool));
        try {
          this.#onRecord?.(record);
        } catch (err) {
          this.#context.report(err instanceof Error ? err : new Error(String(err)));
        }
        if (this.#queue.length >= this.#batchSize) this.#tick();
      },
      (err: unknown) => {
        this.#building--;
        this.#context.report(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  #enqueue(records: ToolCallRecord[]): void {
    this.#queue.push(...records);
    const over = this.#queue.length - MAX_QUEUED;
    if (over > 0) {
      for (const dropped of this.#queue.splice(0, over)) this.#spooled.delete(dropped.id);
      this.#dropped += over;
      this.#context.report(new Error(`tool call reports: ${this.#dropped} record(s) dropped, the queue holds at most ${MAX_QUEUED} while the authorization server does not take them`));
    }
  }

  #tick(): void {
    if (this.#closed || this.#sending || Date.now() < this.#retryAt) return;
    if (!this.#queue.length && this.#loaded) return;
    void this.#send(false);
  }

  async flush(): Promise<void> {
    // records still being built join the queue within a tick or two
    for (let i = 0; this.#building > 0 && i < 100; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    await this.#send(true);
  }

  /** One sending round at a time; a forced round (flush) ignores the backoff. */
  #send(force: boolean): Promise<void> {
    if (this.#sending) return this.#sending.then(() => (force ? this.#send(true) : undefined));
    const round = this.#round(force)
      .catch((err: unknown) => this.#context.report(new Error(`tool call reports: ${err instanceof Error ? err.message : String(err)}`)))
      .finally(() => {
      this.#sending = undefined;
    });
    this.#sending = round;
    return round;
  }

  #spoolFile(): Promise<ReportSpool<ToolCallRecord> | undefined> {
    this.#spool ??= (async () => openSpool<ToolCallRecord>(this.#context.options.spoolDir ?? (await defaultSpoolDir(this.#context.resource))))();
    return this.#spool;
  }

  async #round(force: boolean): Promise<void> {
    const spool = await this.#spoolFile();
    if (!this.#loaded) {
      this.#loaded = true;
      if (spool) {
        try {
          const { records, unreadable } = await spool.load();
          const queued = new Set(this.#queue.map((r) => r.id));
          const earlier = records.filter((r) => !queued.has(r.id));
          for (const record of earlier) this.#spooled.add(record.id);
          this.#queue.unshift(...earlier);
          if (unreadable) this.#context.report(new Error(`tool call reports: ${unreadable} unreadable line(s) in ${spool.path} skipped`));
        } catch (err) {
          this.#context.report(new Error(`tool call reports: cannot read the spool ${spool.path}: ${(err as Error).message}`));
        }
      }
    }
    if (!force && Date.now() < this.#retryAt) return;
    while (this.#queue.length) {
      const batch = this.#queue.slice(0, this.#batchSize);
      const problem = await this.#deliver(batch);
      if (problem) {
        this.#failures++;
        this.#retryAt = Date.now() + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.#failures - 1));
        await this.#spoolUnsent(spool);
        this.#context.report(new Error(`tool call reports: ${problem}; ${this.#queue.length} record(s) kept${spool ? ` in ${spool.path}` : ' in memory'}, retrying`));
        return;
      }
      this.#failures = 0;
      this.#retryAt = 0;
      const sent = new Set(batch.map((r) => r.id));
      this.#queue = this.#queue.filter((r) => !sent.has(r.id));
      if (spool && batch.some((r) => this.#spooled.has(r.id))) {
        for (const id of sent) this.#spooled.delete(id);
        await this.#rewrite(spool);
      }
    }
  }

  /** Appends the queued records not in the spool yet. */
  async #spoolUnsent(spool: ReportSpool<ToolCallRecord> | undefined): Promise<void> {
    if (!spool) return;
    const unsent = this.#queue.filter((r) => !this.#spooled.has(r.id));
    try {
      await spool.append(unsent);
      for (const record of unsent) this.#spooled.add(record.id);
    } catch (err) {
      this.#context.report(new Error(`tool call reports: cannot write the spool ${spool.path}: ${(err as Error).message}`));
    }
  }

  async #rewrite(spool: ReportSpool<ToolCallRecord>): Promise<void> {
    try {
      await spool.replace(this.#queue.filter((r) => this.#spooled.has(r.id)));
    } catch (err) {
      this.#context.report(new Error(`tool call reports: cannot rewrite the spool ${spool.path}: ${(err as Error).message}`));
    }
  }

  /** Sends one batch: undefined when the AS took it (refused entries reported), else why it must be retried. */
  async #deliver(batch: ToolCallRecord[]): Promise<string | undefined> {
    const { issuer, resourceServer, fetch } = this.#context;
    let endpoint: string;
    try {
      endpoint = (await this.#context.endpointFromMetadata()) ?? `${issuer.replace(/\/$/, '')}/tool-executions`;
    } catch {
      endpoint = `${issuer.replace(/\/$/, '')}/tool-executions`;
    }
    let response: Response;
    try {
      response = await fetch(endpoint, {
        method: 'POST',
        headers: { authorization: basic(resourceServer!.clientId, resourceServer!.clientSecret), 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ executions: batch }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (err) {
      return `the authorization server did not answer (${(err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).message})`;
    }
    if (response.status === 401) {
      await response.body?.cancel().catch(() => undefined);
      return 'the authorization server refused the resource server credentials (401 invalid_client)';
    }
    if (response.status === 429 || response.status >= 500) {
      await response.body?.cancel().catch(() => undefined);
      return `the authorization server answered ${response.status}`;
    }
    const answer = (await response.json().catch(() => undefined)) as { rejected?: unknown } | undefined;
    if (response.status !== 200) {
      // the batch as a whole was refused (400, 413, 403…): sending it again cannot help
      for (const record of batch) this.#context.report(new Error(`tool call report ${record.id} refused by the authorization server (${response.status})`));
      return undefined;
    }
    const rejected = Array.isArray(answer?.rejected) ? (answer.rejected as { id?: unknown; error?: unknown }[]) : [];
    for (const entry of rejected) {
      this.#context.report(new Error(`tool call report ${String(entry?.id).slice(0, 64)} refused by the authorization server: ${String(entry?.error).slice(0, 100)}`));
    }
    return undefined;
  }

  async close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer as Parameters<typeof clearInterval>[0]);
    let timer: unknown;
    const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    unrefTimer(timer);
    await Promise.race([this.flush(), gaveUp]);
    clearTimeout(timer as Parameters<typeof clearTimeout>[0]);
    this.#closed = true;
    // what is still unsent waits in the spool for the next process (a round still under way spools its own failure)
    await this.#spoolUnsent(await this.#spoolFile());
  }
}
