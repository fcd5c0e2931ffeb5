/**
 * oidc-provider's own forms (device user code, sign-out confirmation) are bound to the
 * browser session that rendered them. Posted without that session (cookie missing, or
 * the session gone from the store), oidc-provider fails with a server error while
 * re-rendering the form; we answer with a readable "expired" page instead.
 */
import type { Middleware } from 'koa';
import type { Store } from '../../adapters/contract.js';
import { PageError } from '../http/page-error.js';

export const SESSION_COOKIE = 'mcp_authz_session';

export function sessionFormGuard(options: { store: Store; paths: string[] }): Middleware {
  const paths = new Set(options.paths);
  const sessions = options.store.model('Session');
  return async (ctx, next) => {
    if (ctx.method === 'POST' && paths.has(ctx.path)) {
      const id = ctx.cookies.get(SESSION_COOKIE, { signed: true });
      if (!id || !(await sessions.find(id))) {
        throw new PageError(400, 'Page expired', 'This page has expired. Go back, reload it and try again.');
      }
    }
    await next();
  };
}
