/**
 * Builds one oidc-provider instance from the configuration and the current signing keys,
 * with our `form_post` page and its events routed to the application log.
 */
import Provider, { type Client, type KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from '../observability/logger.js';
import { providerConfiguration, type ProviderDeps } from './configuration.js';
import type { RevocationPublisher } from '../revocation/publisher.js';
import { watchMetadataDocuments } from '../clients/metadata-documents.js';
import { allowAnyLoopbackPort } from '../clients/loopback-redirects.js';
import { grantUsage } from '../grants/usage.js';
import { limitTokenRequests } from './token-limit.js';
import { guardClientCredentials } from './machine-grant.js';
import { checkRefreshTarget } from './refresh-target.js';
import { canonicalTokenResources } from './resource-parameters.js';
import { urlsFromIssuer } from './issuer-urls.js';
import { auditProviderEvents } from './audit-events.js';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import { operatorHint } from '../http/error-boundary.js';

export function createProvider(deps: ProviderDeps, publisher: RevocationPublisher, log: Logger): Provider {
  const provider = new Provider(deps.config.issuer, providerConfiguration(deps));
  provider.proxy = deps.config.trustProxy;
  provider.maxIpsCount = deps.config.proxyHops;
  urlsFromIssuer(provider, deps.config.issuer);
  watchMetadataDocuments(provider, deps.config.cimd, log, deps.audit);
  auditProviderEvents(provider, deps.audit, log);
  allowAnyLoopbackPort(provider);
  limitTokenRequests(provider, deps.limits);
  guardClientCredentials(provider, deps.machine);
  checkRefreshTarget(provider, deps.resources);
  // last, so it runs first: the checks above see canonical resource indicators
  canonicalTokenResources(provider, deps.resources);

  useOurFormPost(provider, deps.pages);

  // the client directory: registrations, and every client's last use (which keeps registered ones alive)
  provider.on('registration_create.success', (_ctx: KoaContextWithOIDC, client: Client) => void deps.usage.registered(client));
  for (const event of ['authorization.success', 'grant.success', 'device_authorization.success'] as const) {
    (provider as unknown as NodeJS.EventEmitter).on(event, (ctx: KoaContextWithOIDC) => {
      if (ctx.oidc?.client) void deps.usage.used(ctx.oidc.client);
    });
  }

  // a grant's last use, for the "connected apps" page and `mcp-authz grants list`
  const grants = grantUsage(deps.store, log);
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const grantId = (ctx.oidc.entities.Grant as { jti?: string } | undefined)?.jti;
    if (grantId) void grants.used(grantId);
  });

  // A revoked grant (refresh token revoked or replayed, consent withdrawn) reaches verifiers
  // through the revocation log: its JWT access tokens are not stored anywhere else.
  provider.on('grant.revoked', (_ctx: KoaContextWithOIDC, grantId: string) => {
    publisher.grant(grantId).catch(() => {});
  });

  const requestId = (ctx: KoaContextWithOIDC | undefined) => (ctx?.state as { requestId?: string } | undefined)?.requestId;
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: Error) => {
    const hint = operatorHint(err);
    log.error({ requestId: requestId(ctx), err: { name: err.name, message: err.message, stack: err.stack }, ...(hint ? { hint } : {}) }, 'server error');
  });
  // OAuth errors are the client's problem, not ours: log the code and where, never the request.
  for (const event of [
    'authorization.error',
    'grant.error',
    'introspection.error',
    'revocation.error',
    'end_session.error',
    'userinfo.error',
    'device_authorization.error',
    'code_verification.error',
    'jwks.error',
    'discovery.error',
  ] as const) {
    (provider as unknown as NodeJS.EventEmitter).on(event, (ctx: KoaContextWithOIDC, err: Error & { error?: string; error_detail?: string; status?: number }) => {
      log.info({ requestId: requestId(ctx), event, error: err.error ?? err.name, detail: err.error_detail, status: err.status }, 'oauth error');
    });
  }
  return provider;
}

/**
 * `response_mode=form_post` answered by our page (an external script under the strict CSP)
 * instead of the engine's, whose inline script the CSP blocks. `registerResponseMode` keeps a
 * mode already registered, so the built-in one is replaced in the engine's map of modes (the
 * same internal as src/provider/token-limit.ts); start-up fails if that map changes shape.
 */
function useOurFormPost(provider: Provider, pages: ProviderDeps['pages']): void {
  const modes = instance(provider).responseModes;
  if (!(modes instanceof Map) || !modes.has('form_post')) {
    throw new Error('oidc-provider has no responseModes map with form_post: update src/provider/create-provider.ts for this oidc-provider version');
  }
  modes.set('form_post', async (ctx: KoaContextWithOIDC, redirectUri: string, payload: Record<string, unknown>) => {
    const fields = Object.fromEntries(Object.entries(payload).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
    await pages.formPost(ctx, redirectUri, fields);
  });
}
