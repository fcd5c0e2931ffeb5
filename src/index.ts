/**
 * Builds the whole authorization server from a validated configuration, without
 * listening: `createServer(config)` → koa app + the running provider + the store.
 * Used by `mcp-authz serve` and by the tests (which listen on port 0).
 *
 * A request's path: src/http (koa: request id, headers, errors, static, our pages)
 *   → src/interactions (sign-in, consent) or src/provider (oidc-provider, mounted)
 *   → adapters/ (the store contract) → SQLite or Redis.
 */
import Koa, { type Middleware } from 'koa';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Config } from './config/schema.js';
import { storeOptions } from './config/redis.js';
import { openStore } from '../adapters/index.js';
import type { Store } from '../adapters/contract.js';
import type { RevocationPublisher } from './revocation/publisher.js';
import { createLogger, type Logger } from './observability/logger.js';
import { loadOrCreateKeySet } from './keys/signing-keys.js';
import { loadOrCreateSecrets } from './keys/secrets.js';
import { readCookieKeysFile } from './keys/secret-files.js';
import { keyTiming, longestAccessTokenTtl } from './keys/timing.js';
import { ResourceRegistry } from './provider/resources.js';
import { createProvider } from './provider/create-provider.js';
import { fileKeys, ProviderHolder, storedKeys } from './provider/holder.js';
import { unauthorizedGrantType } from './provider/grant-type-errors.js';
import { devicePolling } from './provider/device-polling.js';
import { refreshReuseGrace } from './provider/refresh-reuse.js';
import { limitClientAuthentication } from './provider/client-auth-limit.js';
import { toolExecutionsEndpoint } from './tool-executions/endpoint.js';
import { sessionFormGuard } from './provider/session-guard.js';
import { jwtAccessTokens } from './provider/jwt-access-tokens.js';
import { ownAccessTokens } from './provider/own-access-tokens.js';
import { toolApprovalService, type ToolApprovalService } from './tool-approvals/service.js';
import { toolApprovalsEndpoint } from './tool-approvals/endpoint.js';
import { approvalPageRouter } from './tool-approvals/approval-page.js';
import { auditTokenEndpoints } from './provider/token-endpoint-audit.js';
import { canonicalResourceParameters } from './provider/resource-parameters.js';
import { discoveryDocuments } from './provider/discovery.js';
import { RevocationHub } from './revocation/hub.js';
import { revocationPublisher } from './revocation/publisher.js';
import { FEED_PATH, revocationFeed } from './revocation/feed.js';
import { createAccountService } from './accounts/service.js';
import { createRenderer } from './http/render.js';
import { createCsrf } from './http/csrf.js';
import { securityHeaders } from './http/security-headers.js';
import { staticFiles } from './http/static-files.js';
import { requestContext } from './http/request-context.js';
import { errorBoundary } from './http/error-boundary.js';
import { backChannelPaths, besideBackChannel } from './http/back-channel.js';
import { auditBarrier } from './http/audit-barrier.js';
import { deviceLinkPrefill } from './http/device-link.js';
import { userCodeAttemptLimit } from './http/user-code-attempts.js';
import { RateLimits } from './http/limits.js';
import { trustedBrowsers } from './http/trusted-browser.js';
import { health } from './http/health.js';
import { interactionRouter } from './interactions/router.js';
import { providerPages } from './interactions/provider-pages.js';
import { connectedAppsRouter } from './interactions/connected-apps.js';
import { accountSignInRouter } from './interactions/account-sign-in.js';
import { connectionSignIn } from './interactions/connection-sign-in.js';
import { loginCompleter, loginFinisher } from './interactions/finish-login.js';
import { FactorCheck } from './second-factors/check.js';
import { RelyingParty } from './second-factors/passkeys.js';
import { secondFactorStep } from './second-factors/sign-in-step.js';
import { accountSecurityRouter } from './second-factors/account-security.js';
import { ConnectionRegistry } from './connections/registry.js';
import { connectionGate, revokeDisabledConnections } from './connections/gate.js';
import { connectionsRouter } from './connections/router.js';
import { clientUsage } from './clients/usage.js';
import { registrationHygiene } from './clients/registration.js';
import { MachineClients } from './clients/machine-clients.js';
import { REGISTRATION_PATH } from './provider/configuration.js';
import type { AuditLog } from './audit/events.js';
import { createAuditLog } from './audit/log.js';
import { createDemo, DEMO_BANNER, type Demo } from './demo/index.js';
import { countedAuditLog, ServerMetrics } from './observability/metrics.js';
import { timedStore } from './observability/timed-store.js';
import { endpointName } from './observability/endpoints.js';
import { Readiness } from './admin/readiness.js';

export const VIEWS_DIR = fileURLToPath(new URL('../../views', import.meta.url));

export interface ServerOptions {
  /** an already opened store (tests share one); otherwise opened from the configuration */
  store?: Store;
  logger?: Logger;
}

export interface AuthServer {
  app: Koa;
  config: Config;
  store: Store;
  holder: ProviderHolder;
  hub: RevocationHub;
  publisher: RevocationPublisher;
  log: Logger;
  /** the tamper-evident audit log (this process's chain); writes nothing until something is recorded */
  audit: AuditLog;
  /** the demo's pages (set-up link, MCP host page), when started without a config file */
  demo: Demo | undefined;
  /** this server's Prometheus metrics (served by the admin listener, src/admin/listener.ts) */
  metrics: ServerMetrics;
  /** what `/readyz` answers; `drain()` before shutting down */
  readiness: Readiness;
  /** per-call tool approvals: asked by MCP servers, decided by the person (the approval page) */
  toolApprovals: ToolApprovalService;
  /**
   * Stops timers, ends the revocation feed streams (telling followers to reconnect), flushes the
   * audit log and closes the store (if this server opened it).
   */
  close(): Promise<void>;
}

export async function createServer(config: Config, options: ServerOptions = {}): Promise<AuthServer> {
  // the application log and the audit log never share a stream: with audit records on standard
  // output, the application log goes to standard error
  const log = options.logger ?? createLogger(config.logLevel, undefined, { fd: config.audit.sink === 'stdout' ? 2 : 1 });
  const opened = options.store ?? (await openStore(storeOptions(config)));
  const ownsStore = !options.store;
  const metrics = new ServerMetrics();
  const store = timedStore(opened, metrics);
  let hub: RevocationHub | undefined;
  let audit: AuditLog | undefined;
  let registry: ConnectionRegistry | undefined;
  try {
    const chained = createAuditLog({ config, store, log });
    const auditLog = countedAuditLog(chained, metrics);
    audit = auditLog;
    await store.ping();
    // keys and cookie secrets from mounted files when configured, otherwise kept in the store
    if (!config.keys.file) {
      const { created } = await loadOrCreateKeySet(store.settings);
      if (created) {
        log.info({ event: 'keys.created' }, 'created the first signing keys');
        auditLog.record({ event: 'key.rotated', outcome: 'success', actor: 'server', details: { created: true } });
      }
    }
    const secrets = config.secrets.cookieKeysFile ? readCookieKeysFile(config.secrets.cookieKeysFile) : await loadOrCreateSecrets(store.settings);

    const issuer = new URL(config.issuer);
    const basePath = issuer.pathname.replace(/\/$/, '');
    const secure = issuer.protocol === 'https:';
    const resources = new ResourceRegistry(config);
    const render = createRenderer({ viewsDir: VIEWS_DIR, cache: true, banner: config.demo ? DEMO_BANNER : undefined });
    const csrf = createCsrf({ key: secrets.csrfKey, secureCookies: secure });
    const limits = new RateLimits(store.limits, config.rateLimits, log, auditLog);
    const pages = providerPages(resources, render, new Set(config.clients.map((c) => c.client_id)));
    const usage = clientUsage(store, config, log);
    const machine = new MachineClients(config);
    const publisher = revocationPublisher(store.revocations, longestAccessTokenTtl(config), log);
    hub = new RevocationHub(store.revocations, log);
    hub.countEntries((n) => metrics.feedEvents(n));
    await hub.start();
    // upstream sign-in connections; a disabled one's grants are revoked before anything is served
    const connections = new ConnectionRegistry(config, { config, store, log, basePath, audit: auditLog, limits, render, cookieKeys: secrets.cookieKeys });
    registry = connections;
    const gateDeps = { registry: connections, store, publisher, audit: auditLog, log };
    await revokeDisabledConnections(gateDeps, config.connections);
    const accountGate = connectionGate(gateDeps);
    const holder = new ProviderHolder(
      (jwks) => createProvider({ config, store, accountGate, secrets, jwks, resources, pages, basePath, log, usage, limits, machine, audit: auditLog }, publisher, log),
      config.keys.file ? fileKeys(config.keys.file) : storedKeys(store.settings, keyTiming(config)),
      basePath,
      log,
    );
    await holder.refresh();
    holder.start(config.keys.reloadInterval * 1000);

    const accounts = createAccountService(store.accounts);
    const trusted = trustedBrowsers({ secureCookies: secure, path: basePath || '/' });
    // second factors: at sign-in, before dangerous scopes, and on the account page
    const rp = new RelyingParty(config.issuer, config.secondFactor.totpIssuer);
    const factorCheck = new FactorCheck({ store, limits, audit: auditLog, log, rp });
    const secondFactors = secondFactorStep({ config, store, holder, render, csrf, log, audit: auditLog, basePath, check: factorCheck, rp, complete: loginCompleter({ holder, audit: auditLog, log }) });
    const finishLogin = loginFinisher({ holder, audit: auditLog, log, secondFactor: secondFactors.gate });
    const signIn = connectionSignIn({ config, holder, registry: connections, accounts: store.accounts, render, log, basePath, limits, audit: auditLog, finishLogin });
    const router = interactionRouter({ config, holder, resources, accounts, render, csrf, log, basePath, limits, trusted, audit: auditLog, connections: signIn, finishLogin, secondFactors });
    const security = accountSecurityRouter({ config, store, csrf, log, audit: auditLog, render, basePath, check: factorCheck, rp });
    const upstream = connectionsRouter(connections, signIn.complete, basePath);
    const apps = connectedAppsRouter({ config, store, holder, resources, csrf, publisher, log, basePath, render, audit: auditLog });
    const accountSignIn = accountSignInRouter({ config, store, holder, log, basePath });
    // started without a config file: the demo's pages
    const demo = config.demo ? await createDemo({ config: { ...config, demo: config.demo }, accounts, csrf, render, audit: auditLog, log, basePath }) : undefined;

    const readiness = new Readiness(store, () => holder.loaded, log);
    const toolApprovals = toolApprovalService({ config, store, holder, audit: auditLog });
    // a person's decision on one tool call (src/tool-approvals/approval-page.ts)
    const approvalPage = approvalPageRouter({ config, store, holder, resources, csrf, render, basePath, check: factorCheck, rp, approvals: toolApprovals });
    const feedHub = hub;
    metrics.attach({ auditBacklog: () => chained.backlog(), feedSubscribers: () => feedHub.subscribers, ready: () => readiness.ready });

    // oidc-provider runs on our koa context when mounted: its signed cookies use our app's keys.
    // behind proxies, the client is the address `proxyHops` entries from the right of X-Forwarded-For:
    // entries further left are whatever the client sent
    const app = new Koa({ proxy: config.trustProxy, maxIpsCount: config.proxyHops, keys: secrets.cookieKeys });
    // Errors are logged where they are handled; koa's default printer would dump stacks.
    app.on('error', (err: Error) => log.debug({ err: { name: err.name, message: err.message } }, 'koa error'));
    app.use(
      requestContext(log, config.trustProxy, (ctx, seconds) => {
        const body = ctx.body as { error?: unknown } | null | undefined;
        const error = ctx.status >= 400 && body && typeof body === 'object' && !Buffer.isBuffer(body) && 'error' in body ? body.error : undefined;
        metrics.request(endpointName(ctx.path, basePath), ctx.method, ctx.status, seconds, error);
      }),
    );
    app.use(securityHeaders({ hsts: secure }));
    app.use(errorBoundary(render, log));
    app.use(auditBarrier(auditLog));
    // pages, routers and endpoints of their own: stepped over by token, introspection and revocation requests
    const backChannel = backChannelPaths(basePath);
    app.use(
      besideBackChannel(backChannel, [
        staticFiles({ dir: join(VIEWS_DIR, 'static'), prefix: '/static' }),
        health(store),
        revocationFeed({
          log: store.revocations,
          hub,
          path: `${basePath}${FEED_PATH}`,
          heartbeatMs: 5000,
          maxConnectionsPerSource: config.revocationFeed.maxConnectionsPerSource,
        }),
        ...[router, apps, approvalPage, accountSignIn, security, upstream, ...(demo?.routers ?? [])].flatMap((r) => [r.routes(), r.allowedMethods()] as Middleware[]),
        deviceLinkPrefill(`${basePath}/device`),
        userCodeAttemptLimit(limits, `${basePath}/device`, render),
        sessionFormGuard({ store, paths: [`${basePath}/device`, `${basePath}/session/end/confirm`] }),
      ]),
    );
    app.use(devicePolling({ store, basePath, interval: config.deviceFlow.interval, deviceCodeTtl: config.ttl.deviceCode }));
    app.use(limitClientAuthentication(limits, basePath));
    // MCP servers authenticate as themselves: after the client-authentication limit above
    app.use(
      besideBackChannel(backChannel, [
        toolApprovalsEndpoint({ holder, resources, tokens: ownAccessTokens({ holder, hub, store, issuer: config.issuer }), service: toolApprovals, log, basePath }),
        toolExecutionsEndpoint({ holder, resources, store, audit: auditLog, basePath }),
      ]),
    );
    app.use(refreshReuseGrace({ store, basePath, graceSeconds: config.refreshTokens.reuseGraceWindow, log, onReplay: () => metrics.refreshReplayed() }));
    app.use(auditTokenEndpoints(auditLog, basePath));
    app.use(unauthorizedGrantType(basePath));
    app.use(jwtAccessTokens({ holder, hub, store, resources, publisher, issuer: config.issuer, basePath }));
    app.use(canonicalResourceParameters(resources, basePath));
    app.use(
      besideBackChannel(backChannel, [
        discoveryDocuments(resources, basePath),
        registrationHygiene({ config, store, holder, resources, usage, log, limits, audit: auditLog, machine, path: `${basePath}${REGISTRATION_PATH}` }),
      ]),
    );
    app.use(holder.middleware);

    return {
      app,
      config,
      store,
      holder,
      hub,
      publisher,
      log,
      audit: auditLog,
      demo,
      metrics,
      readiness,
      toolApprovals,
      async close() {
        readiness.drain();
        holder.stop();
        await hub?.stop();
        await registry?.close();
        await audit?.close();
        if (ownsStore) await opened.close();
      },
    };
  } catch (err) {
    await hub?.stop();
    await registry?.close();
    await audit?.close().catch(() => {});
    if (ownsStore) await opened.close().catch(() => {});
    throw err;
  }
}
