/**
 * Discovery as MCP clients look for it:
 * - `scopes_supported` lists the MCP servers' scopes besides the OpenID ones (the engine
 *   only knows the latter);
 * - for an issuer with a path (`https://as.example.com/tenant`), the RFC 8414 path-inserted
 *   forms `/.well-known/oauth-authorization-server/tenant` and
 *   `/.well-known/openid-configuration/tenant` answer too (the engine serves
 *   `/tenant/.well-known/…`, the OpenID Connect form);
 * - `tool_executions_endpoint` names where MCP servers report tool calls (src/tool-executions).
 */
import type { Middleware } from 'koa';
import { TOOL_EXECUTIONS_PATH } from '../tool-executions/endpoint.js';
import type { ResourceRegistry } from './resources.js';

const DOCUMENTS = ['oauth-authorization-server', 'openid-configuration'];

export function discoveryDocuments(resources: ResourceRegistry, basePath: string): Middleware {
  const served = new Set(DOCUMENTS.map((name) => `${basePath}/.well-known/${name}`));
  const pathInserted = new Map(basePath ? DOCUMENTS.map((name) => [`/.well-known/${name}${basePath}`, `${basePath}/.well-known/${name}`]) : []);
  return async (ctx, next) => {
    const target = ctx.method === 'GET' || ctx.method === 'HEAD' || ctx.method === 'OPTIONS' ? pathInserted.get(ctx.path) : undefined;
    if (target) ctx.path = target;
    await next();
    if (served.has(ctx.path) && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      const body = ctx.body as { scopes_supported?: string[]; issuer?: unknown; tool_executions_endpoint?: string };
      body.scopes_supported = [...new Set([...(body.scopes_supported ?? []), ...resources.scopeNames])];
      if (typeof body.issuer === 'string') body.tool_executions_endpoint = `${body.issuer}${TOOL_EXECUTIONS_PATH}`;
    }
  };
}
