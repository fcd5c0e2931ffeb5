/**
 * Lets a middleware read and adjust the form parameters of a request before oidc-provider
 * handles it. oidc-provider reads the raw request stream itself, so after reading it here we
 * hand it a fresh `IncomingMessage` carrying the (possibly rewritten) body, with the
 * original's method, URL, headers and socket. Bodies over the engine's own limit are left
 * unread, so the engine refuses them as it always does.
 */
import { IncomingMessage } from 'node:http';
import type { Context } from 'koa';

/** oidc-provider's limit for form bodies (lib/shared/selective_body.js). */
const ENGINE_LIMIT = 56 * 1024;

/** The body's parameters, once a middleware has read them: the next one reads these instead. */
const PARSED = Symbol('form parameters');

/**
 * Calls `adjust` with the request's form parameters (query for GET, body for a urlencoded
 * POST); when it returns true, the request continues with the adjusted parameters. The body
 * is read once per request: later calls get the parameters as the earlier ones left them.
 */
export async function adjustFormParams(ctx: Context, adjust: (params: URLSearchParams) => boolean): Promise<void> {
  if (ctx.method === 'GET') {
    const params = new URLSearchParams(ctx.querystring);
    if (adjust(params)) ctx.querystring = params.toString();
    return;
  }
  const state = ctx.state as { [PARSED]?: URLSearchParams };
  const parsed = state[PARSED];
  if (parsed) {
    if (adjust(parsed)) replayBody(ctx, Buffer.from(parsed.toString(), 'utf8'));
    return;
  }
  if (ctx.method !== 'POST' || !ctx.is('application/x-www-form-urlencoded')) return;
  // unread past the limit: the body is handed on as it came, for the engine to refuse as too large
  const body = await readBody(ctx, ENGINE_LIMIT);
  if (body === undefined) return;
  const params = new URLSearchParams(body.toString('utf8'));
  state[PARSED] = params;
  replayBody(ctx, adjust(params) ? Buffer.from(params.toString(), 'utf8') : body);
}

/**
 * Reads a request body of at most `limit` bytes for a middleware that must look at it before
 * oidc-provider does; `undefined` when it is larger (then it is handed on as it came, for the
 * engine to refuse). Call {@link replayBody} before passing the request on.
 */
export async function readBody(ctx: Context, limit: number): Promise<Buffer | undefined> {
  const declared = ctx.request.length;
  if (declared !== undefined && declared > limit) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    chunks.push(chunk);
    if (size > limit) break;
  }
  const body = Buffer.concat(chunks);
  if (size > limit) {
    replay(ctx, body, size);
    return undefined;
  }
  return body;
}

/** Hands `body` to the next reader of the request (oidc-provider) as if it had just arrived. */
export function replayBody(ctx: Context, body: Buffer): void {
  replay(ctx, body, body.length);
}

/** Puts `body` back as the request stream oidc-provider will read. */
function replay(ctx: Context, body: Buffer, contentLength: number): void {
  const original = ctx.req;
  const fresh = new IncomingMessage(original.socket);
  fresh.method = original.method;
  fresh.url = original.url;
  fresh.httpVersion = original.httpVersion;
  fresh.httpVersionMajor = original.httpVersionMajor;
  fresh.httpVersionMinor = original.httpVersionMinor;
  fresh.headers = { ...original.headers, 'content-length': String(contentLength) };
  delete fresh.headers['transfer-encoding'];
  fresh.rawHeaders = original.rawHeaders;
  // a whole message: otherwise its end counts as an aborted request and Node closes the socket
  fresh.complete = true;
  fresh.push(body);
  fresh.push(null);
  ctx.req = fresh;
  ctx.request.req = fresh;
}
