/**
 * Config → oidc-provider Configuration. Everything the engine does is decided here:
 * which grants exist (code + PKCE S256, client credentials, device code, refresh),
 * which resources become token audiences, lifetimes, keys, cookies and pages.
 */
import { errors, type Configuration, type KoaContextWithOIDC, type ErrorOut, type Client } from 'oidc-provider';
import type { JWK } from 'jose';
import { OIDC_SCOPES, type Config, type ResourceConfig } from '../config/schema.js';
import type { Store } from '../../adapters/contract.js';
import type { ServerSecrets } from '../keys/secrets.js';
import { adapterClass } from './adapter.js';
import { engineSigningKeys } from '../keys/node-signing-key.js';
import { staticClientMetadata } from './clients.js';
import { accountClientGrant, accountClientMetadata } from './account-client.js';
import { findAccount, personOf, type AccountGate } from './accounts.js';
import type { ResourceRegistry } from './resources.js';
import { DEFAULT_ACCESS_TOKEN_TTL } from '../keys/timing.js';
import { SESSION_COOKIE } from './session-guard.js';
import { FEED_PATH } from '../revocation/feed.js';
import { consentPolicy } from './consent-policy.js';
import { authenticationClaims } from './authentication-claims.js';
import { ACR_MFA, ACR_ONE_FACTOR } from '../second-factors/policy.js';
import type { Logger } from '../observability/logger.js';
import { metadataDocumentSettings } from '../clients/metadata-documents.js';
import type { ClientUsage } from '../clients/usage.js';
import type { RateLimits } from '../http/limits.js';
import type { AuditLog } from '../audit/events.js';
import { CLIENT_CREDENTIALS, type MachineClients } from '../clients/machine-clients.js';

/** The pages oidc-provider renders itself, supplied by src/interactions. */
export interface ProviderPages {
  /** `error` is why the page is shown again (oidc-provider's re-render reasons), if it is */
  userCodeInput(ctx: KoaContextWithOIDC, xsrf: string, error?: Error): Promise<void>;
  userCodeConfirm(ctx: KoaContextWithOIDC, xsrf: string, client: Client, userCode: string): Promise<void>;
  deviceSuccess(ctx: KoaContextWithOIDC): Promise<void>;
  logout(ctx: KoaContextWithOIDC, xsrf: string): Promise<void>;
  loggedOut(ctx: KoaContextWithOIDC): Promise<void>;
  error(ctx: KoaContextWithOIDC, out: ErrorOut, error: Error): Promise<void>;
  /** `response_mode=form_post`: an auto-submitting form without inline script */
  formPost(ctx: KoaContextWithOIDC, action: string, fields: Record<string, string>): Promise<void>;
}

export interface ProviderDeps {
  config: Config;
  store: Store;
  /** refuses accounts of disabled connections or gone upstream (src/connections/gate.ts) */
  accountGate?: AccountGate;
  secrets: ServerSecrets;
  jwks: { keys: JWK[] };
  resources: ResourceRegistry;
  pages: ProviderPages;
  /** the issuer's path ('' at the origin); our interaction routes live under it */
  basePath: string;
  log: Logger;
  /** told about every client registration and use (src/clients/usage.ts) */
  usage: ClientUsage;
  /** the rate limits (src/http/limits.ts): token requests per client, document fetches per host */
  limits: RateLimits;
  /** who may get tokens without a person, and how many scopes (src/clients/machine-clients.ts) */
  machine: MachineClients;
  audit: AuditLog;
}

export const ACCESS_TOKEN_ALG = 'ES256';

/** Whether the engine is serving a client credentials token request (a token without a person). */
function isClientCredentials(ctx: KoaContextWithOIDC): boolean {
  return ctx.oidc.route === 'token' && (ctx.oidc.params as { grant_type?: unknown } | undefined)?.grant_type === CLIENT_CREDENTIALS;
}

/** The scopes of `resource` a client acting for itself may get: none when it may not act alone at all. */
function machineScopes({ machine, resources }: ProviderDeps, client: Client, resource: ResourceConfig): string[] {
  const ceiling = machine.ceiling(client);
  if (!ceiling) return [];
  return resources.machineScopes(client.clientId, resource, ceiling.kind === 'ceiling' ? ceiling.scopes : undefined);
}

/** RFC 7591 registration endpoint, under the issuer (where SDKs look when metadata names none). */
export const REGISTRATION_PATH = '/register';

export function providerConfiguration(deps: ProviderDeps): Configuration {
  const { config, store, secrets, jwks, resources, pages, basePath, log } = deps;
  const documents = metadataDocumentSettings(config.cimd, log, deps.limits, deps.audit, deps.machine);
  const tokenTtl = (token: { resourceServer?: { audience?: string | string[]; accessTokenTTL?: number }; scope?: string }) => {
    const audience = token.resourceServer?.audience;
    const resource = typeof audience === 'string' ? resources.find(audience) : undefined;
    if (!resource) return token.resourceServer?.accessTokenTTL ?? DEFAULT_ACCESS_TOKEN_TTL;
    return resources.accessTokenTtl(resource, (token.scope ?? '').split(' ').filter(Boolean));
  };
  const secureCookies = new URL(config.issuer).protocol === 'https:';
  const sessionState = (ctx: KoaContextWithOIDC) => (ctx.oidc.session?.state as { secret?: string } | undefined)?.secret ?? '';

  return {
    adapter: adapterClass(store, { clientTtl: config.registration.unusedClientTtl }),
    fetch: documents.fetch,
    fetchResponseBodyLimits: documents.fetchResponseBodyLimits,
    // the operator's clients, and the account pages' own (src/provider/account-client.ts)
    clients: [...config.clients.map(staticClientMetadata), accountClientMetadata(config.issuer)],
    // the engine's default, except for the account client: an unsaved grant of `openid`, never a consent page
    loadExistingGrant: async (ctx) => {
      const own = accountClientGrant(ctx);
      if (own) return own;
      const grantId = (ctx.oidc.result as { consent?: { grantId?: string } } | undefined)?.consent?.grantId || ctx.oidc.session?.grantIdFor(ctx.oidc.client!.clientId);
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    responseTypes: ['code'],
    pkce: { required: () => true },
    scopes: [...OIDC_SCOPES],
    // how the person signed in (auth_time, acr, amr: src/second-factors/policy.ts) is in every ID token
    claims: { openid: ['sub', 'auth_time', 'acr', 'amr'], profile: ['preferred_username'] },
    acrValues: [ACR_ONE_FACTOR, ACR_MFA],
    findAccount: findAccount(store, deps.accountGate),
    jwks: { keys: engineSigningKeys(jwks.keys) } as Configuration['jwks'],
    cookies: {
      keys: secrets.cookieKeys,
      names: { session: SESSION_COOKIE, interaction: 'mcp_authz_interaction', resume: 'mcp_authz_resume' },
      long: { httpOnly: true, sameSite: 'lax', secure: secureCookies, signed: true },
      short: { httpOnly: true, sameSite: 'lax', secure: secureCookies, signed: true },
    },
    clockTolerance: 5,
    // Browser-based clients call the token endpoint from their own origin (that of a redirect URI),
    // or from an origin the operator allows; requests carry no cookies, so this exposes nothing more.
    clientBasedCORS: (_ctx, origin, client) =>
      origin !== 'null' &&
      (config.corsOrigins.includes('*') || config.corsOrigins.includes(origin) || (client.redirectUris ?? []).some((uri) => URL.parse(uri)?.origin === origin)),
    ttl: {
      // a token for a configured MCP server lives as long as that server's accessTokenTtl, or
      // shorter when it carries a scope with its own (shorter) accessTokenTtl
      AccessToken: (_ctx, token) => tokenTtl(token),
      ClientCredentials: (_ctx, token) => tokenTtl(token),
      AuthorizationCode: config.ttl.authorizationCode,
      DeviceCode: config.ttl.deviceCode,
      IdToken: config.ttl.idToken,
      RefreshToken: config.ttl.refreshToken,
      Interaction: config.ttl.interaction,
      Session: config.ttl.session,
      Grant: config.ttl.grant,
    },
    // Tokens of MCP clients outlive the browser session that created them.
    expiresWithSession: async () => false,
    // MCP clients never ask for offline_access (the SDK does not add it): a client allowed the
    // refresh_token grant gets a refresh token.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    interactions: {
      policy: consentPolicy(resources, config.secondFactor),
      url: async (_ctx, interaction) => `${basePath}/interaction/${interaction.uid}`,
    },
    renderError: (ctx, out, error) => pages.error(ctx, out, error),
    // a person's access token names its grant, and how the person signed in (RFC 9068 §2.2.1:
    // auth_time, acr, amr — src/second-factors/policy.ts), so an MCP server can ask for more
    extraTokenClaims: async (ctx, token) => (token.kind === 'AccessToken' && token.grantId ? { grant_id: token.grantId, ...authenticationClaims(ctx) } : undefined),
    discovery: { revocation_feed_endpoint: `${config.issuer}${FEED_PATH}` },
    routes: { registration: REGISTRATION_PATH },
    features: {
      devInteractions: { enabled: false },
      // ES256 signed synchronously with node:crypto (src/keys/node-signing-key.ts)
      externalSigningSupport: { enabled: true, ack: 'experimental-01' },
      clientIdMetadataDocument: documents.feature,
      // RFC 7591: MCP clients register themselves; no registration access tokens (RFC 7592 is not offered)
      registration: {
        enabled: config.registration.mode !== 'off',
        initialAccessToken: config.registration.mode === 'token' ? (config.registration.initialAccessToken ?? false) : false,
        issueRegistrationAccessToken: false,
      },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // A client may introspect what was issued to it, and a resource server client what
        // was issued for its MCP server; public clients only their own tokens.
        allowedPolicy: async (_ctx, client, token) => {
          if (token.clientId === client.clientId) return true;
          if (client.clientAuthMethod === 'none') return false;
          const { resource } = token as { resource?: unknown };
          const served = typeof resource === 'string' ? resources.find(resource) : undefined;
          return !!served && served.resourceServerClients.includes(client.clientId);
        },
      },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx) => pages.logout(ctx, sessionState(ctx)),
        postLogoutSuccessSource: (ctx) => pages.loggedOut(ctx),
      },
      deviceFlow: {
        enabled: true,
        charset: config.deviceFlow.charset,
        mask: config.deviceFlow.mask,
        userCodeInputSource: (ctx, _form, _out, err) => pages.userCodeInput(ctx, sessionState(ctx), err),
        userCodeConfirmSource: (ctx, _form, client, _deviceInfo, userCode) => pages.userCodeConfirm(ctx, sessionState(ctx), client, userCode),
        successSource: (ctx) => pages.deviceSuccess(ctx),
      },
      resourceIndicators: {
        enabled: true,
        // Refresh and code exchange without `resource` keep the resource the grant was for.
        useGrantedResource: async () => true,
        // A request without `resource` is for the one MCP server it can sensibly mean; a request for
        // MCP scopes without any such server is told what to send.
        defaultResource: async (ctx, client, oneOf) => {
          if (oneOf) return oneOf;
          const fallback = resources.defaultFor(client.clientId);
          if (fallback) return fallback.uri;
          const scope = (ctx.oidc.params as { scope?: unknown } | undefined)?.scope;
          const mcpScopes = new Set(resources.scopeNames);
          if (typeof scope === 'string' && scope.split(' ').some((s) => mcpScopes.has(s))) {
            const choices = resources.all.filter((r) => resources.mayUse(client.clientId, r)).map((r) => r.uri);
            throw new errors.InvalidTarget(`name the MCP server with the resource parameter, one of: ${choices.join(', ')}`);
          }
          return undefined;
        },
        getResourceServerInfo: async (ctx, indicator, client) => {
          const resource = resources.find(indicator);
          if (!resource) throw new errors.InvalidTarget('the resource is not an MCP server known to this authorization server');
          if (!resources.mayUse(client.clientId, resource)) throw new errors.InvalidTarget('this client may not request tokens for that resource');
          // a person's tokens carry only scopes both the client and the scope policy allow them,
          // whatever the grant says (roles may have changed since); a token without a person, only
          // what its client may hold alone (src/clients/machine-clients.ts)
          const person = personOf(ctx.oidc.account);
          const scopes = isClientCredentials(ctx)
            ? machineScopes(deps, client, resource)
            : person
              ? resources.grantableScopes(client.clientId, resource, person)
              : resources.allowedScopes(client.clientId, resource);
          return {
            audience: resource.uri,
            scope: scopes.join(' '),
            accessTokenTTL: resource.accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: ACCESS_TOKEN_ALG } },
          };
        },
      },
    },
  };
}
