/**
 * What the node, koa and fetch adapters share: CORS (preflight and exposed headers), reading
 * the JSON-RPC body for per-operation scopes, and the order of checks:
 * token (401) → body (400/413) → `Mcp-Method` / `Mcp-Name` match the body (400, -32020) →
 * scopes of the operation (403) → for a `tools/call` of a tool in `toolApprovals`, a person's
 * approval (src/verifier/tool-approvals.ts). With `scopesFrom: 'headers'` the body is not read:
 * token (401) → the headers name the operation (400, -32020) → its scopes (403).
 */
import { EXPOSE_HEADERS, type Challenge } from './challenge.js';
import { isVerifierError } from './errors.js';
import { HEADER_MISMATCH, asMessage, headerMismatch, operationFromHeaders, type McpHeaders } from './mcp-headers.js';
import { needsBody, operationScopes, union, type OperationScopeOptions } from './scopes.js';
import { createApprovalStep, type ApprovalAnswerMode, type ToolApprovals } from './tool-approvals.js';
import { toolCallsIn, type ToolCallStart } from './tool-reports.js';
import type { AuthInfo, Verifier } from './types.js';

/** CORS for browser-based MCP clients; bearer tokens only, so no credentials mode. */
export interface CorsOptions {
  /** allowed origin(s); `'*'` (default) allows any. With a list, a listed request `Origin` is echoed. */
  origin?: string | readonly string[];
}

/** Options of `nodeMiddleware`, `koaMiddleware` and `authenticateRequest`. */
export interface AdapterOptions extends OperationScopeOptions {
  /** scopes every request needs */
  requiredScopes?: readonly string[];
  /** CORS headers on every answer and preflight handling; `false` to leave CORS to the application. Default `{ origin: '*' }`. */
  cors?: CorsOptions | false;
  /** largest JSON-RPC body read for `toolScopes` / `resourceScopes`, bytes; default 1 MiB */
  maxBodyBytes?: number;
  /**
   * Where the operation whose `toolScopes` / `resourceScopes` apply is read from. `'body'`
   * (default): the JSON-RPC body, and `Mcp-Method` / `Mcp-Name`, when sent, must match it (else
   * 400 with JSON-RPC error -32020). `'headers'`: from `Mcp-Method` / `Mcp-Name` alone, the
   * body unread (a POST without them is refused with 400 -32020), for gateways; only safe when
   * the MCP server behind refuses headers that do not match the body.
   */
  scopesFrom?: 'body' | 'headers';
  /**
   * Tools each call of which a person must approve, by name: `{ summary(args, auth), sensitive? }`.
   * Needs the verifier's `resourceServer` option and the body (not `scopesFrom: 'headers'`);
   * a call of such a tool in a batch is refused. See docs/verifier.md.
   */
  toolApprovals?: ToolApprovals;
  /** How a client learns a call waits for approval; default `'auto'` (see {@link ApprovalAnswerMode}). */
  approvalAnswer?: ApprovalAnswerMode;
  /**
   * Per tool, the arguments whose values never leave this server in a tool call report
   * (replaced by `[redacted]`; the digest still covers them): `{ login: ['password'] }`. A tool in
   * `toolApprovals` adds its own `sensitive` names to these.
   */
  sensitiveArguments?: Readonly<Record<string, readonly string[]>>;
}

/** Request headers a browser MCP client sends (the SDK adds `MCP-Protocol-Version` and `Mcp-Session-Id`). */
export const ALLOW_HEADERS = 'Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Session-Id, Mcp-Method, Mcp-Name, Last-Event-ID';
export const ALLOW_METHODS = 'GET, POST, DELETE, OPTIONS';

const DEFAULT_MAX_BODY = 1024 * 1024;

/** A bad request body: 400 (JSON-RPC parse error) or 413. */
export class BodyError extends Error {
  override readonly name = 'BodyError';
  constructor(readonly status: 400 | 413) {
    super(status === 413 ? 'request body too large' : 'request body is not JSON');
  }
}

/** CORS response headers for a request from `origin` (empty when CORS is off or the origin is not allowed). */
export function corsHeaders(options: CorsOptions | false | undefined, origin: string | null | undefined): Record<string, string> {
  if (options === false) return {};
  const allowed = options?.origin ?? '*';
  const headers: Record<string, string> = { 'Access-Control-Expose-Headers': EXPOSE_HEADERS };
  if (allowed === '*') headers['Access-Control-Allow-Origin'] = '*';
  else {
    headers.Vary = 'Origin';
    const list = typeof allowed === 'string' ? [allowed] : allowed;
    if (origin && list.includes(origin)) headers['Access-Control-Allow-Origin'] = origin;
  }
  return headers;
}

/** The 204 answer to a CORS preflight (`OPTIONS`). */
export function preflightAnswer(options: CorsOptions | false | undefined, origin: string | null | undefined): Challenge {
  return {
    status: 204,
    headers: {
      ...corsHeaders(options, origin),
      'Access-Control-Allow-Methods': ALLOW_METHODS,
      'Access-Control-Allow-Headers': ALLOW_HEADERS,
      'Access-Control-Max-Age': '86400',
    },
    body: '',
  };
}

/** Parses a JSON request body read as bytes (BodyError 400 when it is not JSON). */
export function parseJsonBody(bytes: Uint8Array): unknown {
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BodyError(400);
  }
}

/** Reads an async iterable of chunks (a node request) up to `limit` bytes. */
export async function readChunks(source: AsyncIterable<unknown>, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of source) {
    const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk instanceof Uint8Array ? chunk : new Uint8Array(0);
    size += bytes.byteLength;
    if (size > limit) throw new BodyError(413);
    chunks.push(bytes);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const bytes of chunks) (out.set(bytes, offset), (offset += bytes.byteLength));
  return out;
}

/** The JSON-RPC error answer for a BodyError. */
function bodyAnswer(error: BodyError, cors: Record<string, string>): Challenge {
  const message = error.status === 413 ? 'Request body too large' : 'Parse error';
  return {
    status: error.status,
    headers: { ...cors, 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', error: { code: error.status === 413 ? -32600 : -32700, message }, id: null }),
  };
}

/** The 400 answer for headers that do not match the body (or cannot name the operation). */
function headerMismatchAnswer(message: string, body: unknown, cors: Record<string, string>): Challenge {
  const id = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { id?: unknown }).id : undefined;
  return {
    status: 400,
    headers: { ...cors, 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: typeof id === 'string' || typeof id === 'number' ? id : null, error: { code: HEADER_MISMATCH, message } }),
  };
}

/** `calls`: the `tools/call` requests let through, to report once their response is finished (empty when not reporting). */
export type GuardResult = { auth: AuthInfo; body?: unknown; parsedBody: boolean; calls: ToolCallStart[] } | { answer: Challenge };

/** The request as the guard needs it. */
export interface GuardRequest {
  method: string;
  authorization: string | null | undefined;
  origin: string | null | undefined;
  /** the parsed body when some earlier middleware parsed it */
  parsedBody?: unknown;
  /** the `Mcp-Method` and `Mcp-Name` request headers (header names are case-insensitive; values as sent) */
  mcp?: McpHeaders;
  /** reads and parses the body (called at most once, only for a POST when scopes depend on it) */
  readBody: (limit: number) => Promise<unknown>;
}

/** The adapters' core. Non-verifier errors are thrown for the framework to handle. */
export function createGuard(verifier: Verifier, options: AdapterOptions = {}) {
  const requiredScopes = union([options.requiredScopes ?? []]);
  const scopesOf = operationScopes(options);
  const fromHeaders = options.scopesFrom === 'headers';
  // throws at adapter creation for declarations it cannot honour
  const approvals = createApprovalStep(verifier, options);
  const wantsBody = (needsBody(options) || approvals !== undefined) && !fromHeaders;
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  // every tools/call let through is reported: the body is read for it even without per-tool scopes
  // (not with scopesFrom: 'headers', which leaves the body unread for the MCP server behind)
  const reporting = verifier.toolCalls !== undefined && verifier.toolCalls.mode !== false;
  const readsBody = wantsBody || (reporting && !fromHeaders);
  /** the arguments a report redacts: `sensitiveArguments` and the approval declaration's `sensitive` */
  const sensitiveOf = (tool: string): string[] =>
    union([
      options.sensitiveArguments && Object.hasOwn(options.sensitiveArguments, tool) ? options.sensitiveArguments[tool]! : [],
      options.toolApprovals && Object.hasOwn(options.toolApprovals, tool) ? (options.toolApprovals[tool]!.sensitive ?? []) : [],
    ]);

  return {
    cors: (origin: string | null | undefined) => corsHeaders(options.cors, origin),

    /** Reports a call let through, once its outcome is known. */
    finish(call: ToolCallStart, outcome: 'success' | 'error'): void {
      verifier.toolCalls?.finish(call, outcome, sensitiveOf(call.tool));
    },

    /** The preflight answer for an OPTIONS request (when CORS is on), else undefined. */
    preflight(request: Pick<GuardRequest, 'method' | 'origin'>): Challenge | undefined {
      return request.method === 'OPTIONS' && options.cors !== false ? preflightAnswer(options.cors, request.origin) : undefined;
    },

    async check(request: GuardRequest): Promise<GuardResult> {
      const cors = corsHeaders(options.cors, request.origin);
      const challenge = (err: unknown): Challenge => {
        const answer = verifier.challenge(err);
        return { ...answer, headers: { ...answer.headers, ...cors } };
      };
      const refuse = (err: unknown): GuardResult => {
        if (!isVerifierError(err)) throw err;
        return { answer: challenge(err) };
      };
      let auth: AuthInfo;
      try {
        auth = await verifier.authenticate(request.authorization, { requiredScopes });
      } catch (err) {
        return refuse(err);
      }
      const authorizeFor = (needed: readonly string[]): GuardResult | undefined => {
        if (!needed.length) return undefined;
        try {
          verifier.authorize(auth, union([requiredScopes, needed]));
          return undefined;
        } catch (err) {
          return refuse(err);
        }
      };
      const read = async (): Promise<{ body: unknown; parsedBody: boolean } | { answer: Challenge }> => {
        if (request.parsedBody !== undefined) return { body: request.parsedBody, parsedBody: false };
        try {
          return { body: await request.readBody(limit), parsedBody: true };
        } catch (err) {
          if (err instanceof BodyError) return { answer: bodyAnswer(err, cors) };
          throw err;
        }
      };
      const calls = (body: unknown, as: AuthInfo) => (reporting ? toolCallsIn(body, as) : []);
      // a gateway reading the headers alone leaves the body (and the report) to the MCP server behind it
      if (fromHeaders && needsBody(options) && request.method === 'POST') {
        const operation = operationFromHeaders(request.mcp ?? {});
        if (typeof operation === 'string') return { answer: headerMismatchAnswer(operation, undefined, cors) };
        return authorizeFor(scopesOf(asMessage(operation))) ?? { auth, parsedBody: false, calls: [] };
      }
      if (!readsBody || request.method !== 'POST') return { auth, parsedBody: false, calls: [] };
      const got = await read();
      if ('answer' in got) return got;
      const { body, parsedBody } = got;
      const mismatch = headerMismatch(request.mcp ?? {}, body);
      if (mismatch) return { answer: headerMismatchAnswer(mismatch, body, cors) };
      const refused = authorizeFor(scopesOf(body));
      if (refused) return refused;
      if (!approvals) return { auth, body, parsedBody, calls: calls(body, auth) };
      // the report names the approval the call ran under (auth.extra.approval)
      const approved = await approvals.check(body, auth, cors, challenge);
      return 'answer' in approved ? approved : { auth: approved.auth, body, parsedBody, calls: calls(body, approved.auth) };
    },
  };
}
