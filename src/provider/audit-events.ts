/**
 * The engine's events, in the audit log (and, for refresh token theft, the application log):
 * - `grant.success` → `token.issued` (authorization code, client credentials, device code) or
 *   `token.refreshed`, naming a JWT access token by its `jti` (an opaque token's id is its value:
 *   never recorded);
 * - `grant.error` on a refresh token used before → `refresh_token.reuse_detected` (the engine
 *   revoked the grant just before answering: its `grant.revoked`, `by: refresh_token_reuse`,
 *   comes first);
 * - `grant.revoked` → `grant.revoked`, with what caused it.
 * Revocation and introspection are recorded around the endpoints (src/provider/token-endpoint-audit.ts),
 * where JWT access tokens are handled too.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Context } from 'koa';
import type { AuditEvent, AuditLog } from '../audit/events.js';
import { addRequestFacts, requestFacts } from '../audit/request-facts.js';
import type { Logger } from '../observability/logger.js';

/** What the engine's token models carry that the audit log may hold (identifiers only). */
interface TokenEntity {
  jti?: string;
  accountId?: string;
  clientId?: string;
  grantId?: string;
  scope?: string;
  aud?: string | string[];
  resourceServer?: { audience?: string; accessTokenFormat?: string };
  consumed?: unknown;
}

type Entities = Partial<Record<'AccessToken' | 'ClientCredentials' | 'RefreshToken' | 'Grant', TokenEntity>>;

const entitiesOf = (ctx: KoaContextWithOIDC): Entities => (ctx.oidc?.entities ?? {}) as Entities;
const facts = (ctx: KoaContextWithOIDC) => requestFacts(ctx as unknown as Context);

export function auditProviderEvents(provider: Provider, audit: AuditLog, log: Logger): void {
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const grantType = String(ctx.oidc.params?.grant_type ?? '');
    const entities = entitiesOf(ctx);
    const token = entities.AccessToken ?? entities.ClientCredentials;
    const clientId = ctx.oidc.client?.clientId;
    if (!token || !clientId) return;
    const audience = Array.isArray(token.aud) ? token.aud[0] : (token.aud ?? token.resourceServer?.audience);
    const grantId = token.grantId ?? entities.Grant?.jti;
    // built member by member, not spread from parts: one object of one shape per token, on the
    // hottest path there is
    const details: Record<string, string | string[]> = { grantType: grantType.slice(0, 128) };
    // a JWT's id names it; an opaque token's id IS the token, so it is never recorded
    if (token.jti && token.resourceServer?.accessTokenFormat === 'jwt') details.jti = token.jti;
    if (grantId) details.grantId = grantId;
    details.scopes = (token.scope ?? '').split(' ').filter(Boolean);
    const event: AuditEvent = {
      event: grantType === 'refresh_token' ? 'token.refreshed' : 'token.issued',
      outcome: 'success',
      actor: token.accountId ?? clientId,
      client: clientId,
    };
    if (audience) event.resource = audience;
    addRequestFacts(event, ctx as unknown as Context);
    event.details = details;
    audit.record(event);
  });

  provider.on('grant.error', (ctx: KoaContextWithOIDC) => {
    // the engine keeps the presented refresh token as an entity before refusing a consumed one
    const presented = entitiesOf(ctx).RefreshToken;
    if (ctx.oidc?.params?.grant_type !== 'refresh_token' || !presented?.consumed) return;
    const clientId = ctx.oidc.client?.clientId;
    log.warn(
      { event: 'refresh_token.reuse_detected', clientId, grantId: presented.grantId, requestId: facts(ctx).requestId },
      'rotated refresh token presented again after the grace window; grant revoked',
    );
    audit.record({
      event: 'refresh_token.reuse_detected',
      outcome: 'failure',
      ...(presented.accountId ? { actor: presented.accountId } : {}),
      ...(clientId ? { client: clientId } : {}),
      ...facts(ctx),
      details: { ...(presented.grantId ? { grantId: presented.grantId } : {}), action: 'grant_revoked' },
    });
  });

  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => {
    const presented = entitiesOf(ctx).RefreshToken;
    const clientId = ctx?.oidc?.client?.clientId;
    const by = ctx?.oidc?.params?.grant_type === 'refresh_token' ? 'refresh_token_reuse' : ctx?.oidc?.route === 'revocation' ? 'refresh_token_revoked' : 'engine';
    audit.record({
      event: 'grant.revoked',
      outcome: 'success',
      ...(clientId ? { actor: clientId, client: clientId } : {}),
      ...facts(ctx),
      details: { grantId, by, ...(presented?.accountId ? { accountId: presented.accountId } : {}) },
    });
  });
}
