/**
 * RFC 7009 revocation and RFC 7662 introspection of our JWT access tokens. oidc-provider
 * neither stores JWT access tokens nor accepts them at these endpoints (it answers
 * `unsupported_token_type` after authenticating the client); we take over from there:
 * - revocation: the token's own client may revoke it; it goes into the revocation log that
 *   verifiers follow (the only place a JWT's revocation can live);
 * - introspection: active unless expired, revoked (log), its grant gone, or its account
 *   removed (./own-access-tokens.ts); visible to the token's client and to a client acting
 *   as its MCP server.
 */
import type { Context, Middleware, Next } from 'koa';
import type { Store } from '../../adapters/contract.js';
import type { ProviderHolder } from './holder.js';
import type { ResourceRegistry } from './resources.js';
import type { RevocationHub } from '../revocation/hub.js';
import type { RevocationPublisher } from '../revocation/publisher.js';
import { ownAccessTokens, type AccessTokenClaims } from './own-access-tokens.js';

export type { AccessTokenClaims } from './own-access-tokens.js';

interface OidcState {
  client?: { clientId: string; clientAuthMethod: string };
  params?: Record<string, unknown>;
}

export interface JwtAccessTokenDeps {
  holder: ProviderHolder;
  hub: RevocationHub;
  store: Store;
  resources: ResourceRegistry;
  publisher: RevocationPublisher;
  issuer: string;
  basePath: string;
}

export function jwtAccessTokens(deps: JwtAccessTokenDeps): Middleware {
  const { holder, hub, store, resources, publisher, issuer, basePath } = deps;
  const revocationPath = `${basePath}/token/revocation`;
  const introspectionPath = `${basePath}/token/introspection`;

  const { verify: verifyOwn, isActive } = ownAccessTokens({ holder, hub, store, issuer });

  function mayIntrospect(client: NonNullable<OidcState['client']>, claims: AccessTokenClaims): boolean {
    if (claims.client_id === client.clientId) return true;
    if (client.clientAuthMethod === 'none') return false;
    const audiences = Array.isArray(claims.aud) ? claims.aud : claims.aud ? [claims.aud] : [];
    return audiences.some((aud) => resources.find(aud)?.resourceServerClients.includes(client.clientId));
  }

  // only revocation and introspection are looked at: any other request passes straight on
  const ours = (ctx: Context) => ctx.method === 'POST' && (ctx.path === revocationPath || ctx.path === introspectionPath);
  return (ctx, next) => (ours(ctx) ? afterEngine(ctx, next) : next());

  async function afterEngine(ctx: Context, next: Next): Promise<void> {
    await next();
    if (ctx.status !== 400 || (ctx.body as { error?: string } | undefined)?.error !== 'unsupported_token_type') return;
    const oidc = (ctx as unknown as { oidc?: OidcState }).oidc;
    const client = oidc?.client;
    const token = oidc?.params?.token;
    if (!client || typeof token !== 'string') return;
    const claims = await verifyOwn(token);
    // for the audit record (src/provider/token-endpoint-audit.ts): the claims, never the token
    if (claims) (ctx.state as { accessTokenClaims?: AccessTokenClaims }).accessTokenClaims = claims;

    if (ctx.path === revocationPath) {
      // RFC 7009 §2.2: an invalid or unknown token is answered with 200 as well
      ctx.status = 200;
      ctx.body = '';
      if (!claims) return;
      if (claims.client_id !== client.clientId) {
        if (client.clientAuthMethod === 'none') return;
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', error_description: 'client is not authorized to revoke the presented token' };
        return;
      }
      await publisher.token(claims.jti, claims.exp);
      hub.revoked.add({ type: 'token', key: claims.jti, until: claims.exp });
      (ctx.state as { accessTokenRevoked?: boolean }).accessTokenRevoked = true;
      return;
    }

    ctx.status = 200;
    ctx.body = { active: false };
    if (!claims || !mayIntrospect(client, claims) || !(await isActive(claims))) return;
    const { iss, sub, aud, client_id: clientId, scope, exp, iat, jti, grant_id: grantId, acr, amr, auth_time: authTime } = claims;
    // how the person signed in (src/provider/authentication-claims.ts), for servers that introspect
    const authentication = { ...(acr === undefined ? {} : { acr }), ...(amr === undefined ? {} : { amr }), ...(authTime === undefined ? {} : { auth_time: authTime }) };
    ctx.body = { active: true, token_type: 'Bearer', iss, sub, aud, client_id: clientId, scope, exp, iat, jti, ...(grantId ? { grant_id: grantId } : {}), ...authentication };
  }
}
