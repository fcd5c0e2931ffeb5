/**
 * The refresh token grant's `resource` (RFC 8707 §2.2), checked before the engine consumes the
 * token. oidc-provider rotates a public client's refresh token first and resolves the resource
 * afterwards, so a refresh naming a resource the grant does not cover (or none, for a grant of
 * several) used to spend the token on an `invalid_target` — and the correct retry was then
 * replayed that error, or treated as reuse and the grant revoked.
 *
 * Checked here, inside the engine right before the grant's handler (the client has
 * authenticated): the one resource named or granted must be one the refresh token covers, an MCP
 * server this server knows, and one the client may still use. Anything else is `invalid_target`
 * and the token stays as it was (src/provider/grant-handlers.ts).
 */
import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { wrapGrantHandler } from './grant-handlers.js';
import type { ResourceRegistry } from './resources.js';

/** What the engine's RefreshToken model tells about the resources it covers. */
interface StoredRefreshToken {
  clientId?: string;
  consumed?: unknown;
  isExpired?: boolean;
  resource?: string | string[];
  resourceIndicators: Set<string>;
}

export function checkRefreshTarget(provider: Provider, resources: ResourceRegistry): void {
  wrapGrantHandler(provider, 'refresh_token', (handler) => async (ctx: KoaContextWithOIDC) => {
    const { refresh_token: value, resource: requested } = ctx.oidc.params as { refresh_token?: unknown; resource?: unknown };
    const clientId = ctx.oidc.client?.clientId;
    if (typeof value === 'string' && value && clientId) {
      const token = (await provider.RefreshToken.find(value, { ignoreExpiration: true })) as StoredRefreshToken | undefined;
      // the engine answers everything else (unknown, expired, another client's, already used)
      if (token && token.clientId === clientId && !token.isExpired && !token.consumed) {
        const refusal = targetRefusal(token, requested, clientId, resources);
        if (refusal) throw new errors.InvalidTarget(refusal);
      }
    }
    return handler(ctx);
  });
}

function targetRefusal(token: StoredRefreshToken, requested: unknown, clientId: string, resources: ResourceRegistry): string | undefined {
  let resource: string | undefined;
  if (Array.isArray(requested)) {
    if (requested.length > 1) return 'only one resource may be named in a token request';
    resource = typeof requested[0] === 'string' ? requested[0] : undefined;
  } else if (typeof requested === 'string' && requested) {
    resource = requested;
  } else {
    // no resource named: the engine uses what was granted, which must then be one server
    const granted = token.resource;
    if (Array.isArray(granted) && granted.length > 1) return 'name the MCP server with the resource parameter, one of: ' + granted.join(', ');
    resource = Array.isArray(granted) ? granted[0] : granted;
    if (resource === undefined) return undefined;
  }
  if (resource === undefined || !token.resourceIndicators.has(resource)) return 'the grant does not cover this resource';
  const server = resources.find(resource);
  if (!server) return 'the resource is not an MCP server known to this authorization server';
  if (!resources.mayUse(clientId, server)) return 'this client may not request tokens for that resource';
  return undefined;
}
