/**
 * The one place our own routes' errors become responses. A PageError is shown as it is;
 * a FormBodyError gets its status and a short page; anything else is logged with the
 * request id and shown as a generic 500 page. Never a stack trace, path or version.
 * (oidc-provider renders its own errors through the same error view.)
 */
import type { Middleware } from 'koa';
import type { Logger } from '../observability/logger.js';
import { FormBodyError } from './form-body.js';
import { PageError } from './page-error.js';
import type { Render } from './render.js';

export function errorBoundary(render: Render, log: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const requestId = ctx.state.requestId as string | undefined;
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
        log.error({ requestId, err: { name: e?.name, message: e?.message, stack: e?.stack } }, 'unhandled error');
      }
      render(ctx, 'error', { title, message, ...(requestId ? { requestId } : {}) }, status);
    }
  };
}
