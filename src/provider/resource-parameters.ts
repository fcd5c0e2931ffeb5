/**
 * RFC 8707 `resource` values are compared canonically (scheme and host case, default port,
 * one trailing slash) and through configured aliases. oidc-provider compares them as plain
 * strings — between the authorization request and the code exchange or refresh, too — so
 * every known indicator is rewritten to its MCP server's configured URI before the engine
 * looks at it. Unknown values are left alone (the engine answers invalid_target).
 *
 * On the authorization, pushed authorization request and device authorization endpoints the
 * request's parameters are rewritten before the engine reads them
 * (`canonicalResourceParameters`). At the token endpoint the engine's own parsed parameters
 * are rewritten, inside the engine right before the grant's handler, where the resource is
 * first used (`canonicalTokenResources`, src/provider/grant-handlers.ts): the request body is
 * then read once, by the engine.
 */
import type { Context, Middleware, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { adjustFormParams } from '../http/form-params.js';
import { grantHandlers, wrapGrantHandler } from './grant-handlers.js';
import type { ResourceRegistry } from './resources.js';

export function canonicalResourceParameters(resources: ResourceRegistry, basePath: string): Middleware {
  // /request: a pushed authorization request (RFC 9126) becomes the grant just as /auth does
  const paths = new Set([`${basePath}/auth`, `${basePath}/request`, `${basePath}/device/auth`]);
  const rewrite = async (ctx: Context, next: Next) => {
    await adjustFormParams(ctx, (params) => {
      const values = params.getAll('resource');
      const canonical = values.map((value) => canonicalIndicator(resources, value));
      if (canonical.every((value, i) => value === values[i])) return false;
      params.delete('resource');
      for (const value of canonical) params.append('resource', value);
      return true;
    });
    await next();
  };
  // any other request passes straight on
  return (ctx, next) => (paths.has(ctx.path) && (ctx.method === 'POST' || (ctx.method === 'GET' && ctx.path === `${basePath}/auth`)) ? rewrite(ctx, next) : next());
}

/**
 * Puts the rewrite in front of every grant type handler at the token endpoint. Call it after
 * every other wrapper (src/provider/create-provider.ts), so that the checks they make see the
 * canonical resource.
 */
export function canonicalTokenResources(provider: Provider, resources: ResourceRegistry): void {
  for (const grantType of [...grantHandlers(provider).keys()]) {
    wrapGrantHandler(provider, grantType, (handler) => (ctx: KoaContextWithOIDC) => {
      const params = ctx.oidc.params as { resource?: unknown } | undefined;
      const resource = params?.resource;
      if (typeof resource === 'string') params!.resource = canonicalIndicator(resources, resource);
      else if (Array.isArray(resource)) params!.resource = resource.map((value: unknown) => (typeof value === 'string' ? canonicalIndicator(resources, value) : value));
      return handler(ctx);
    });
  }
}

/** One indicator: its MCP server's configured URI when it names one, else as it came. */
function canonicalIndicator(resources: ResourceRegistry, value: string): string {
  return resources.find(value)?.uri ?? value;
}
