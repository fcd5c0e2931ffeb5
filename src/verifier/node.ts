/**
 * node:http / Express / connect adapter.
 *
 * `nodeMiddleware(verifier, options)` authenticates each request and sets `req.auth` (what
 * the SDK's `StreamableHTTPServerTransport.handleRequest` reads). With `toolScopes` or
 * `resourceScopes` it needs the JSON-RPC body: it uses `req.body` when a body parser ran
 * first, and otherwise reads and parses the body itself and sets `req.body` — then pass it
 * on: `transport.handleRequest(req, res, req.body)` (the stream has been consumed).
 * `next` is optional: without it (plain node:http) the returned promise resolves to `true`
 * when the request may proceed and `false` when an answer was sent.
 */
import type { Challenge } from './challenge.js';
import { createGuard, parseJsonBody, preflightAnswer, readChunks, type AdapterOptions } from './http.js';
import { METADATA_HEADERS } from './metadata.js';
import { OBSERVED_BYTES, outcomeOf } from './tool-reports.js';
import type { AuthInfo, Verifier } from './types.js';

/** The parts of `http.IncomingMessage` (or an Express request) the adapter uses. */
export interface NodeRequestLike extends AsyncIterable<unknown> {
  method?: string | undefined;
  url?: string | undefined;
  /** Express: the URL before mounting */
  originalUrl?: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  /** a parsed body (Express `express.json()`), or set by the middleware */
  body?: unknown;
}

/** The parts of `http.ServerResponse` the adapter uses. */
export interface NodeResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(chunk?: string): unknown;
  /** looked at (wrapped) to learn a tool call's outcome when calls are reported */
  write?: (...args: never[]) => unknown;
  once?: (event: 'finish' | 'close', listener: () => void) => unknown;
}

export type NodeNext = (err?: unknown) => void;

const header = (req: NodeRequestLike, name: string) => {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

function send(res: NodeResponseLike, answer: Challenge): void {
  res.statusCode = answer.status;
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
  res.end(answer.body || undefined);
}

/**
 * Express/connect middleware `(req, res, next)`, also usable as `if (!(await mw(req, res))) return;`
 * in a plain node:http handler. On success sets `req.auth` (an {@link AuthInfo}) and, if it had
 * to read the body for `toolScopes` / `resourceScopes`, `req.body` — pass that to
 * `transport.handleRequest(req, res, req.body)`. Answers preflights, 401, 403, 400/413 and 503
 * itself; other errors go to `next(err)` (or reject without `next`).
 */
export function nodeMiddleware(verifier: Verifier, options: AdapterOptions = {}) {
  const guard = createGuard(verifier, options);
  return async (req: NodeRequestLike, res: NodeResponseLike, next?: NodeNext): Promise<boolean> => {
    try {
      const method = req.method ?? 'GET';
      const origin = header(req, 'origin');
      const preflight = guard.preflight({ method, origin });
      if (preflight) return (send(res, preflight), false);
      const result = await guard.check({
        method,
        origin,
        authorization: header(req, 'authorization'),
        mcp: { method: header(req, 'mcp-method'), name: header(req, 'mcp-name') },
        parsedBody: req.body,
        readBody: async (limit) => parseJsonBody(await readChunks(req, limit)),
      });
      if ('answer' in result) return (send(res, result.answer), false);
      (req as { auth?: unknown }).auth = result.auth;
      if (result.parsedBody) req.body = result.body;
      if (result.calls.length) observeResponse(res, (status, body) => result.calls.forEach((call) => guard.finish(call, outcomeOf(status, body, call.rpcId))));
      for (const [name, value] of Object.entries(guard.cors(origin))) res.setHeader(name, value);
      next?.();
      return true;
    } catch (err) {
      if (!next) throw err;
      next(err);
      return false;
    }
  };
}

const decoder = () => new TextDecoder('utf-8', { fatal: false });

/**
 * Watches what is written to `res` (the first {@link OBSERVED_BYTES} of its body) and calls
 * `done(status, body)` once, when the response has finished (or the connection closed). The
 * writes themselves pass through unchanged.
 */
export function observeResponse(res: NodeResponseLike, done: (status: number, body: string) => void): void {
  const target = res as unknown as { write?: (...args: unknown[]) => unknown; end: (...args: unknown[]) => unknown };
  let seen = '';
  let size = 0;
  const text = decoder();
  const look = (chunk: unknown, encoding: unknown) => {
    if (size >= OBSERVED_BYTES || chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const bytes =
      typeof chunk === 'string'
        ? new TextEncoder().encode(typeof encoding === 'string' && encoding !== 'utf8' && encoding !== 'utf-8' ? '' : chunk)
        : chunk instanceof Uint8Array
          ? chunk
          : undefined;
    if (!bytes) return;
    const part = bytes.subarray(0, OBSERVED_BYTES - size);
    size += part.byteLength;
    seen += text.decode(part, { stream: true });
  };
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    // closed before the response was complete (the client went away): not a success
    const cut = (res as { writableFinished?: boolean }).writableFinished === false;
    done(cut ? Math.max(res.statusCode, 499) : res.statusCode, seen);
  };
  if (typeof target.write === 'function') {
    const write = target.write;
    target.write = function (this: unknown, ...args: unknown[]) {
      look(args[0], args[1]);
      return write.apply(this, args);
    };
  }
  const end = target.end;
  target.end = function (this: unknown, ...args: unknown[]) {
    look(args[0], args[1]);
    const out = end.apply(this, args);
    if (typeof res.once !== 'function') finish();
    return out;
  };
  if (typeof res.once === 'function') {
    res.once('finish', finish);
    res.once('close', finish);
  }
}

/**
 * Serves the RFC 9728 document at `verifier.metadataPath` (GET/HEAD, OPTIONS preflight, 405
 * otherwise), readable from any origin. Other paths go to `next`, or get a 404 without it. Mount it at the root.
 */
export function nodeMetadataHandler(verifier: Verifier) {
  return (req: NodeRequestLike, res: NodeResponseLike, next?: NodeNext): void => {
    const url = req.originalUrl ?? req.url ?? '/';
    const path = url.split('?')[0];
    if (path !== verifier.metadataPath) {
      if (next) return next();
      return send(res, { status: 404, headers: {}, body: '' });
    }
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') return send(res, preflightAnswer({}, header(req, 'origin')));
    if (method !== 'GET' && method !== 'HEAD') return send(res, { status: 405, headers: { Allow: 'GET, HEAD, OPTIONS' }, body: '' });
    const body = JSON.stringify(verifier.protectedResourceMetadata());
    send(res, { status: 200, headers: { ...METADATA_HEADERS }, body: method === 'HEAD' ? '' : body });
  };
}
