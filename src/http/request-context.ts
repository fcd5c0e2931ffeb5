/**
 * Gives every request an id (also sent back as `X-Request-Id`, shown on error pages and
 * written to every log line about it) and logs one line per request: method, path
 * without its query string, status and duration. Never a query, body, cookie or header.
 */
import { randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { requestLineWriter, type Logger } from '../observability/logger.js';

const INCOMING_ID = /^[A-Za-z0-9._-]{8,128}$/;

/** Called once a request is answered: for metrics (src/observability/metrics.ts). */
export type RequestObserver = (ctx: Context, seconds: number) => void;

export function requestContext(log: Logger, trustIncomingId: boolean, observe?: RequestObserver): Middleware {
  // the line's fields are fixed and never secret: no redaction to pay for
  const line = requestLineWriter(log);
  return (ctx, next) => {
    const incoming = trustIncomingId ? ctx.get('x-request-id') : '';
    const requestId = incoming && INCOMING_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    // straight to node's response: koa's `set` builds arrays to normalise what is a string already
    ctx.res.setHeader('X-Request-Id', requestId);
    const started = performance.now();
    const done = () => {
      const ms = performance.now() - started;
      observe?.(ctx, ms / 1000);
      line(requestId, ctx.method, ctx.path, ctx.status, Math.round(ms * 10) / 10);
    };
    // one promise a request, not an async frame around the rest of the chain
    return next().then(done, (err: unknown) => {
      done();
      throw err;
    });
  };
}
