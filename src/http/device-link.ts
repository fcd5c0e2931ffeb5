/**
 * `verification_uri_complete` (GET /device?user_code=…) would make oidc-provider answer
 * with a self-submitting form (inline script). Instead we drop the code from the query and
 * let the user-code page show it prefilled: the person confirms it with one click, which is
 * also what RFC 8628 §5.4 recommends against remote phishing.
 */
import type { Middleware } from 'koa';
import { PREFILL_USER_CODE } from '../interactions/provider-pages.js';

export function deviceLinkPrefill(devicePath: string): Middleware {
  return async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === devicePath && ctx.query.user_code !== undefined) {
      const code = ctx.query.user_code;
      if (typeof code === 'string' && code.length <= 64) ctx.state[PREFILL_USER_CODE] = code;
      const rest = new URLSearchParams(ctx.querystring);
      rest.delete('user_code');
      ctx.querystring = rest.toString();
    }
    await next();
  };
}
