/**
 * Koa adapter. `koaMiddleware(verifier, options)` authenticates each request and sets
 * `ctx.state.auth` and `ctx.req.auth` (the latter for the SDK's Streamable HTTP transport).
 * With `toolScopes` / `resourceScopes` it uses `ctx.request.body` when a body parser ran
 * first, else reads the body itself and sets `ctx.request.body`; pass it on:
 * `transport.handleRequest(ctx.req, ctx.res, ctx.request.body)`.
 */
import type { Challenge } from './challenge.js';
import { createGuard, parseJsonBody, preflightAnswer, readChunks, type AdapterOptions } from './http.js';
import { METADATA_HEADERS } from './metadata.js';
import { observeResponse, type NodeResponseLike } from './node.js';
import { OBSERVED_BYTES, outcomeOf } from './tool-reports.js';
import type { Verifier } from './types.js';

/** The parts of a Koa context the adapter uses. */
export interface KoaContextLike {
  method: string;
  path: string;
  get(field: string): string;
  set(field: string, value: string): void;
  status: number;
  body: unknown;
  state: Record<string, unknown>;
  req: AsyncIterable<unknown>;
  /** the node response: watched for a reported tool call's outcome (whether koa or the SDK transport writes it) */
  res?: unknown;
  request: object;
}

function send(ctx: KoaContextLike, answer: Challenge): void {
  for (const [name, value] of Object.entries(answer.headers)) ctx.set(name, value);
  ctx.status = answer.status;
  // JSON text (Content-Type set above, so Koa keeps it), or '' for no content
  ctx.body = answer.body;
}

/** Koa's `ctx.get` answers '' for an absent header. */
const present = (value: string) => (value === '' ? undefined : value);

/** Koa middleware that refuses unauthenticated or under-scoped requests before `next`. */
export function koaMiddleware(verifier: Verifier, options: AdapterOptions = {}) {
  const guard = createGuard(verifier, options);
  return async (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<void> => {
    const origin = ctx.get('origin') || undefined;
    const preflight = guard.preflight({ method: ctx.method, origin });
    if (preflight) return send(ctx, preflight);
    const request = ctx.request as { body?: unknown };
    const result = await guard.check({
      method: ctx.method,
      origin,
      authorization: ctx.get('authorization') || undefined,
      mcp: { method: present(ctx.get('mcp-method')), name: present(ctx.get('mcp-name')) },
      parsedBody: request.body,
      readBody: async (limit) => parseJsonBody(await readChunks(ctx.req, limit)),
    });
    if ('answer' in result) return send(ctx, result.answer);
    ctx.state.auth = result.auth;
    (ctx.req as { auth?: unknown }).auth = result.auth;
    if (result.parsedBody) request.body = result.body;
    for (const [name, value] of Object.entries(guard.cors(origin))) ctx.set(name, value);
    if (!result.calls.length) {
      await next();
      return;
    }
    const report = (status: number, body: string) => result.calls.forEach((call) => guard.finish(call, outcomeOf(status, body, call.rpcId)));
    const res = ctx.res as Partial<NodeResponseLike> | undefined;
    if (res && typeof res.end === 'function' && typeof res.once === 'function') {
      observeResponse(res as NodeResponseLike, report);
      await next();
      return;
    }
    try {
      await next();
    } catch (err) {
      report(500, '');
      throw err;
    }
    report(ctx.status, bodyText(ctx.body));
  };
}

/** A koa body as text for {@link outcomeOf} (a stream is not read: its status decides). */
function bodyText(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, OBSERVED_BYTES);
  if (body instanceof Uint8Array) return new TextDecoder().decode(body.subarray(0, OBSERVED_BYTES));
  if (body && typeof body === 'object' && typeof (body as { pipe?: unknown }).pipe !== 'function') return JSON.stringify(body).slice(0, OBSERVED_BYTES);
  return '';
}

/** Serves the RFC 9728 document at `verifier.metadataPath` (GET/HEAD, OPTIONS); other paths pass to `next`. */
export function koaMetadataMiddleware(verifier: Verifier) {
  return async (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<void> => {
    if (ctx.path !== verifier.metadataPath) {
      await next();
      return;
    }
    if (ctx.method === 'OPTIONS') return send(ctx, preflightAnswer({}, ctx.get('origin') || undefined));
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return send(ctx, { status: 405, headers: { Allow: 'GET, HEAD, OPTIONS' }, body: '' });
    send(ctx, { status: 200, headers: { ...METADATA_HEADERS }, body: JSON.stringify(verifier.protectedResourceMetadata()) });
  };
}
