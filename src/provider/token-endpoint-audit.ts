/**
 * `token.introspected` and `token.revoked` in the audit log, recorded around the introspection
 * and revocation endpoints once their answer is final — whether the engine answered (refresh
 * tokens) or src/provider/jwt-access-tokens.ts did (our JWT access tokens, whose verified claims
 * it leaves in `ctx.state.accessTokenClaims`). Only identifiers are recorded: the access token's
 * `jti`, the grant id, the subject; a refresh token's id is its value, so it is never recorded.
 * Requests refused before the client was authenticated record nothing here.
 */
import type { Context, Middleware, Next } from 'koa';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';
import type { AccessTokenClaims } from './jwt-access-tokens.js';

interface EngineToken {
  kind?: string;
  accountId?: string;
  clientId?: string;
  grantId?: string;
}

interface OidcView {
  client?: { clientId: string };
  entities?: Partial<Record<'AccessToken' | 'RefreshToken' | 'ClientCredentials', EngineToken>>;
}

/** What is known of the presented token, as audit fields. */
function describeToken(claims: AccessTokenClaims | undefined, oidc: OidcView) {
  if (claims) {
    const aud = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
    return {
      owner: claims.client_id,
      resource: aud,
      details: {
        kind: 'access_token',
        jti: claims.jti,
        ...(claims.grant_id ? { grantId: claims.grant_id } : {}),
        ...(typeof claims.sub === 'string' ? { accountId: claims.sub } : {}),
      },
    };
  }
  const engine = oidc.entities?.RefreshToken ?? oidc.entities?.AccessToken ?? oidc.entities?.ClientCredentials;
  if (engine) {
    return {
      owner: engine.clientId,
      resource: undefined,
      details: {
        kind: engine === oidc.entities?.RefreshToken ? 'refresh_token' : 'access_token',
        ...(engine.grantId ? { grantId: engine.grantId } : {}),
        ...(engine.accountId ? { accountId: engine.accountId } : {}),
      },
    };
  }
  return { owner: undefined, resource: undefined, details: { kind: 'unknown' } };
}

export function auditTokenEndpoints(audit: AuditLog, basePath: string): Middleware {
  const revocationPath = `${basePath}/token/revocation`;
  const introspectionPath = `${basePath}/token/introspection`;
  // only revocation and introspection are recorded here: any other request passes straight on
  const ours = (ctx: Context) => ctx.method === 'POST' && (ctx.path === revocationPath || ctx.path === introspectionPath);
  return (ctx, next) => (ours(ctx) ? recordAnswer(ctx, next) : next());

  async function recordAnswer(ctx: Context, next: Next): Promise<void> {
    await next();
    if (ctx.status !== 200) return;
    const oidc = ((ctx as unknown as { oidc?: OidcView }).oidc ?? {}) as OidcView;
    const caller = oidc.client?.clientId;
    if (!caller) return;
    const { owner, resource, details } = describeToken((ctx.state as { accessTokenClaims?: AccessTokenClaims }).accessTokenClaims, oidc);
    const introspection = ctx.path === introspectionPath;
    const state = ctx.state as { accessTokenClaims?: AccessTokenClaims; accessTokenRevoked?: boolean };
    const active = introspection && (ctx.body as { active?: unknown } | undefined)?.active === true;
    // RFC 7009 answers 200 for a token that is unknown or not the caller's: nothing was revoked then
    const revoked = !introspection && (state.accessTokenClaims ? state.accessTokenRevoked === true : details.kind !== 'unknown');
    audit.record({
      event: introspection ? 'token.introspected' : 'token.revoked',
      outcome: introspection || revoked ? 'success' : 'failure',
      actor: caller,
      client: owner ?? caller,
      ...(resource ? { resource } : {}),
      ...requestFacts(ctx),
      details: { ...details, ...(introspection ? { active } : { revoked }) },
    });
  }
}
