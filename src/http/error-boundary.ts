/**
 * The one place our own routes' errors become responses. A PageError is shown as it is;
 * a FormBodyError gets its status and a short page; a store that cannot be reached (Redis
 * down) is `503` with `Retry-After` — JSON `temporarily_unavailable` for API callers, a page
 * for browsers — logged once per outage; anything else is logged with the request id and
 * shown as a generic 500 page. Never a stack trace, path or version. (oidc-provider renders
 * its own errors through the same error view; its 503s get the same `Retry-After`.)
 */
import type { Context, Middleware } from 'koa';
import { isStoreUnavailable } from '../../adapters/contract.js';
import type { Logger } from '../observability/logger.js';
import { FormBodyError } from './form-body.js';
import { PageError } from './page-error.js';
import type { Render } from './render.js';

/** Seconds a client is told to wait when the store cannot be reached. */
export const STORE_RETRY_AFTER = 2;
/** What a `503 temporarily_unavailable` says when the store cannot be reached (here and in the engine, src/provider/adapter.ts). */
export const STORE_UNAVAILABLE_DESCRIPTION = 'the service is temporarily unavailable; try again shortly';

/**
 * What an operator should do about an error, when we can tell: a Secure cookie refused on a
 * plain-HTTP request means an https issuer behind a TLS-terminating proxy without `TRUST_PROXY`
 * (no one can sign in until it is set).
 */
export function operatorHint(err: unknown): string | undefined {
  const message = (err as Error | undefined)?.message ?? '';
  if (/secure cookie over unencrypted connection/i.test(message)) {
    return 'the issuer is https but this request arrived over plain HTTP: behind a TLS-terminating proxy set TRUST_PROXY=true (trustProxy), so the protocol the proxy saw is believed';
  }
  return undefined;
}

/** What the outage line names when the engine answered the store's 503 itself. */
const ENGINE_STORE_UNAVAILABLE = { name: 'StoreUnavailable', message: 'the store could not be reached from inside the engine' } as Error;

export function errorBoundary(render: Render, log: Logger): Middleware {
  /** one log line per outage: the first failure after a success */
  let unavailable = false;
  const storeUnavailable = (ctx: Context, err: Error) => {
    if (!unavailable) log.error({ requestId: ctx.state.requestId, err: { name: err.name, message: err.message } }, 'the store cannot be reached; answering 503 until it can');
    unavailable = true;
    ctx.set('Retry-After', String(STORE_RETRY_AFTER));
    ctx.set('Cache-Control', 'no-store');
  };

  const answered = (ctx: Context): void => {
    if (unavailable && ctx.status < 500) {
      unavailable = false;
      log.info({ requestId: ctx.state.requestId }, 'the store can be reached again');
    }
    // the engine's own 503: the store failed inside it (src/provider/adapter.ts StoreUnavailable,
    // the token limit) and it answered, or an upstream identity provider is away
    if (ctx.status === 503) {
      const body = ctx.body as { error_description?: unknown } | undefined;
      if (body?.error_description === STORE_UNAVAILABLE_DESCRIPTION) storeUnavailable(ctx, ENGINE_STORE_UNAVAILABLE);
      else if (!ctx.response.get('Retry-After')) ctx.set('Retry-After', String(STORE_RETRY_AFTER));
    }
  };

  const failed = (ctx: Context, err: unknown): void => {
    const requestId = ctx.state.requestId as string | undefined;
    if (isStoreUnavailable(err)) {
      storeUnavailable(ctx, err as Error);
      if (ctx.accepts('json', 'html') === 'html') {
        render(ctx, 'error', { title: 'Temporarily unavailable', message: 'The service is temporarily unavailable. Try again in a few seconds.', ...(requestId ? { requestId } : {}) }, 503);
      } else {
        ctx.status = 503;
        ctx.body = { error: 'temporarily_unavailable', error_description: STORE_UNAVAILABLE_DESCRIPTION };
      }
      return;
    }
    let status = 500;
    let title = 'Something went wrong';
    let message = 'Something went wrong while handling your request. Go back to the app and try again.';
    if (err instanceof PageError) {
      ({ status, title, message } = err);
    } else if (err instanceof FormBodyError) {
      status = err.status;
      title = 'Invalid request';
      message = 'The form could not be read. Go back and try again.';
    } else {
      const e = err as Error;
      const hint = operatorHint(e);
      log.error({ requestId, err: { name: e?.name, message: e?.message, stack: e?.stack }, ...(hint ? { hint } : {}) }, 'unhandled error');
    }
    render(ctx, 'error', { title, message, ...(requestId ? { requestId } : {}) }, status);
  };

  // one promise a request, not an async frame around the rest of the chain
  return (ctx, next) =>
    next().then(
      () => answered(ctx),
      (err: unknown) => failed(ctx, err),
    );
}
