/**
 * RFC 8707 `resource` values are compared canonically (scheme and host case, default port,
 * one trailing slash) and through configured aliases. oidc-provider compares them as plain
 * strings — between the authorization request and the code exchange or refresh, too — so
 * every known indicator is rewritten to its MCP server's configured URI before the engine
 * sees it, on the authorization, pushed authorization request, token and device authorization
 * endpoints. Unknown values
 * are left alone (the engine answers invalid_target).
 */
import type { Middleware } from 'koa';
import { adjustFormParams } from '../http/form-params.js';
import type { ResourceRegistry } from './resources.js';

export function canonicalResourceParameters(resources: ResourceRegistry, basePath: string): Middleware {
  // /request: a pushed authorization request (RFC 9126) becomes the grant just as /auth does
  const paths = new Set([`${basePath}/auth`, `${basePath}/request`, `${basePath}/token`, `${basePath}/device/auth`]);
  return async (ctx, next) => {
    if (paths.has(ctx.path) && (ctx.method === 'POST' || (ctx.method === 'GET' && ctx.path === `${basePath}/auth`))) {
      await adjustFormParams(ctx, (params) => {
        const values = params.getAll('resource');
        const canonical = values.map((value) => resources.find(value)?.uri ?? value);
        if (canonical.every((value, i) => value === values[i])) return false;
        params.delete('resource');
        for (const value of canonical) params.append('resource', value);
        return true;
      });
    }
    await next();
  };
}
