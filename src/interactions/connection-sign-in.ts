/**
 * Sign-in through connections, on the engine's login prompt:
 *
 *   GET  /interaction/:uid/connection/:id        → to the upstream (OIDC, SAML)
 *   POST /interaction/:uid/connection/:id/login  → username and password checked by the directory (LDAP)
 *   POST /interaction/:uid/discover              → home-realm discovery by e-mail address
 *
 * and `complete`, which the drivers' own routes (src/connections/router.ts) call with what the
 * upstream said: provision the account (src/connections/provision.ts), record it, finish the
 * login prompt. An `login_hint` e-mail address on a connection's domain goes straight to it.
 *
 * The drivers' routes live under `/connections/:id/`, where the browser does not send the
 * engine's interaction cookie (its path is `/interaction/:uid`). So what they pass to `complete`
 * is kept in the store (single-use, under a random key) and the browser is sent on to
 *
 *   GET  /interaction/:uid/connection/:id/done?handoff=…  → provision, record, finish
 *
 * where the cookie proves this browser is the one that started the sign-in.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AccountStore } from '../../adapters/contract.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';
import type { Config } from '../config/schema.js';
import type { ConnectionConfig } from '../config/sign-in.js';
import { UpstreamError, type CompleteSignIn, type ConnectionDriver } from '../connections/driver.js';
import { upstreamIdentitySchema } from '../connections/identity.js';
import { provisionAccount } from '../connections/provision.js';
import type { ConnectionRegistry } from '../connections/registry.js';
import { describeWait, tooManyRequestsPage, type RateLimits } from '../http/limits.js';
import { PageError } from '../http/page-error.js';
import { allowFormAction } from '../http/security-headers.js';
import type { Render } from '../http/render.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderHolder } from '../provider/holder.js';
import type { FinishLogin, LoginInteraction } from './finish-login.js';

/** What the login page shows of the connections. */
export interface LoginOptions {
  local: boolean;
  /** the e-mail form of home-realm discovery (shown when a connection has domains) */
  discoverAction?: string;
  connections: { id: string; name: string; href?: string; action?: string }[];
}

export interface LoginExtra {
  error?: string;
  username?: string;
  /** the LDAP connection whose form is shown first (home-realm discovery) */
  selected?: string;
}

/** What the interaction router lends: its interaction lookup, login page and form reader. */
export interface InteractionTools {
  details(ctx: Context): Promise<LoginInteraction & { prompt: { name: string } }>;
  renderLogin(ctx: Context, interaction: LoginInteraction, extra?: LoginExtra, status?: number): Promise<void>;
  form<T extends z.ZodTypeAny>(ctx: Context, schema: T, purpose: string): Promise<z.infer<T>>;
}

export interface ConnectionSignInDeps {
  config: Config;
  holder: ProviderHolder;
  registry: ConnectionRegistry;
  accounts: AccountStore;
  render: Render;
  log: Logger;
  basePath: string;
  limits: RateLimits;
  audit: AuditLog;
  finishLogin: FinishLogin;
}

const idParam = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/);
const passwordForm = z.object({ csrf: z.string().max(200), username: z.string().min(1).max(256), password: z.string().min(1).max(1024) });
const discoverForm = z.object({ csrf: z.string().max(200), email: z.string().max(320) });

/** What the client asked of the sign-in that the upstream should know: a hint, how fresh. */
function freshness(params: Record<string, unknown>): { loginHint?: string; maxAge?: number } {
  const hint = typeof params.login_hint === 'string' && params.login_hint.length <= 320 ? params.login_hint.trim() : '';
  const prompt = typeof params.prompt === 'string' ? params.prompt.split(' ') : [];
  const requested = typeof params.max_age === 'number' || (typeof params.max_age === 'string' && /^\d{1,9}$/.test(params.max_age)) ? Number(params.max_age) : undefined;
  const maxAge = prompt.includes('login') ? 0 : requested !== undefined && Number.isSafeInteger(requested) && requested >= 0 ? requested : undefined;
  return { ...(hint ? { loginHint: hint } : {}), ...(maxAge !== undefined ? { maxAge } : {}) };
}

const REFUSALS: Record<string, string> = {
  username_taken: 'An account with your name already exists here and is not linked to this sign-in service. Ask your administrator.',
  account_of_another_connection: 'Your account here belongs to another sign-in service. Sign in with that one.',
  connection_disabled: 'This sign-in service is no longer available here. Ask your administrator.',
};

export function connectionSignIn(deps: ConnectionSignInDeps) {
  const { config, holder, registry, accounts, log, basePath, limits, audit, finishLogin, render } = deps;

  const startHref = (uid: string, id: string) => `${basePath}/interaction/${uid}/connection/${id}`;

  /** With `ctx`, the login page's CSP lets the discovery form end at the upstreams it may redirect to. */
  function loginOptions(uid: string, ctx?: Context): LoginOptions {
    const connections = registry.enabled().map(({ config: c, start, authenticate }) => ({
      id: c.id,
      name: c.name,
      ...(start ? { href: startHref(uid, c.id) } : {}),
      ...(authenticate ? { action: `${startHref(uid, c.id)}/login` } : {}),
    }));
    const discovery = registry.enabled().some((d) => d.config.domains.length > 0);
    if (ctx && discovery) {
      for (const driver of registry.enabled()) if (driver.config.domains.length > 0) for (const url of driver.upstreamUrls?.() ?? []) allowFormAction(ctx, url);
    }
    return { local: config.localSignIn.enabled, connections, ...(discovery ? { discoverAction: `${basePath}/interaction/${uid}/discover` } : {}) };
  }

  function failed(ctx: Context, interaction: LoginInteraction, connection: ConnectionConfig, reason: string, extra: Record<string, string> = {}) {
    log.info({ requestId: ctx.state.requestId, event: 'login.failed', connection: connection.id, reason }, 'sign-in through a connection failed');
    audit.record({
      event: 'login.failed',
      outcome: 'failure',
      ...(typeof interaction.params.client_id === 'string' ? { client: interaction.params.client_id } : {}),
      ...requestFacts(ctx),
      details: { reason, connection: connection.id, method: connection.kind, ...extra },
    });
  }

  function unavailable(ctx: Context, interaction: LoginInteraction, connection: ConnectionConfig, err: unknown): never {
    const reason = err instanceof UpstreamError ? err.reason : 'upstream_error';
    log.warn({ requestId: ctx.state.requestId, connection: connection.id, err: { name: (err as Error)?.name, message: (err as Error)?.message } }, 'connection failed');
    failed(ctx, interaction, connection, reason);
    const message = err instanceof UpstreamError ? err.userMessage : `${connection.name} could not be reached. Try again in a moment.`;
    throw new PageError(502, `Sign-in with ${connection.name} failed`, message);
  }

  function enabledDriver(id: unknown): ConnectionDriver {
    const parsed = idParam.safeParse(id);
    const driver = parsed.success ? registry.get(parsed.data) : undefined;
    if (!driver || !driver.config.enabled) throw new PageError(404, 'Not found', 'There is no such sign-in service here.');
    return driver;
  }

  /** From a driver's route: keep the identity, send the browser back under the interaction's path. */
  const handOff: CompleteSignIn = async (ctx, connection, uid, identity) => {
    const key = await registry.pending.begin({ uid, connection: connection.id, values: { identity: JSON.stringify(identity) } });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${startHref(uid, connection.id)}/done?handoff=${encodeURIComponent(key)}`);
  };

  const complete: CompleteSignIn = async (ctx, connection, uid, raw) => {
    let interaction;
    try {
      interaction = await holder.provider.interactionDetails(ctx.req, ctx.res);
    } catch {
      interaction = undefined;
    }
    if (!interaction || interaction.uid !== uid || interaction.prompt.name !== 'login') {
      throw new PageError(400, 'Sign-in expired', 'This sign-in request has expired or was opened in another browser. Go back to the app and start again.');
    }
    const parsed = upstreamIdentitySchema.safeParse(raw);
    if (!parsed.success) {
      failed(ctx, interaction, connection, 'invalid_identity');
      throw new PageError(502, `Sign-in with ${connection.name} failed`, `${connection.name} did not say who you are. Ask your administrator.`);
    }
    if (!registry.get(connection.id)?.config.enabled) {
      failed(ctx, interaction, connection, 'connection_disabled');
      throw new PageError(403, 'Cannot sign in', REFUSALS.connection_disabled!);
    }
    const identity = parsed.data;
    const outcome = await provisionAccount(accounts, connection, identity);
    if ('refused' in outcome) {
      failed(ctx, interaction, connection, outcome.refused);
      throw new PageError(403, 'Cannot sign in', REFUSALS[outcome.refused]!);
    }
    const { account } = outcome;
    if (outcome.created) {
      audit.record({
        event: 'account.provisioned',
        outcome: 'success',
        actor: account.id,
        ...requestFacts(ctx),
        details: { accountId: account.id, username: account.username, connection: connection.id, roles: account.roles },
      });
    }
    await finishLogin(ctx, interaction, { account, method: connection.kind, connection: connection.id, amr: identity.amr });
  };

  function routes(router: Router, tools: InteractionTools) {
    router.get('/:uid/connection/:id', async (ctx) => {
      const interaction = await tools.details(ctx);
      const driver = enabledDriver(ctx.params.id);
      if (interaction.prompt.name !== 'login') throw new PageError(400, 'Sign-in expired', 'You are already signed in. Go back to the app.');
      if (!driver.start) throw new PageError(404, 'Not found', 'There is no such sign-in service here.');
      try {
        // the address typed for home-realm discovery comes along as ?login_hint= (and wins over the client's)
        const typed = typeof ctx.query.login_hint === 'string' ? { login_hint: ctx.query.login_hint } : {};
        await driver.start(ctx, { uid: interaction.uid, clientId: String(interaction.params.client_id), ...freshness({ ...interaction.params, ...typed }) });
      } catch (err) {
        unavailable(ctx, interaction, driver.config, err);
      }
    });

    router.get('/:uid/connection/:id/done', async (ctx) => {
      // only the browser of the interaction gets as far as using up the hand-off
      await tools.details(ctx);
      const driver = enabledDriver(ctx.params.id);
      const record = await registry.pending.take(typeof ctx.query.handoff === 'string' ? ctx.query.handoff : '');
      let identity: unknown;
      try {
        identity = record?.values.identity === undefined ? undefined : JSON.parse(record.values.identity);
      } catch {
        identity = undefined;
      }
      if (!record || record.uid !== ctx.params.uid || record.connection !== driver.config.id || identity === undefined) {
        throw new PageError(400, 'Sign-in expired', 'This sign-in request has expired or was already used. Go back to the app and start again.');
      }
      await complete(ctx, driver.config, record.uid, identity as never);
    });

    router.post('/:uid/connection/:id/login', async (ctx) => {
      const interaction = await tools.details(ctx);
      const driver = enabledDriver(ctx.params.id);
      if (interaction.prompt.name !== 'login' || !driver.authenticate) throw new PageError(400, 'Sign-in expired', 'This sign-in request has expired. Go back to the app and start again.');
      const input = await tools.form(ctx, passwordForm, `interaction:${interaction.uid}`);
      // rate-limited as local passwords are, per directory username and per source
      const attempt = await limits.signIn(`${driver.config.id}:${input.username.toLowerCase()}`, ctx.ip);
      if ('refused' in attempt) {
        limits.logHit(ctx, attempt.refused, {});
        const wait = describeWait(attempt.refused.retryAfterMs);
        return tooManyRequestsPage(ctx, render, attempt.refused.retryAfterMs, 'Too many sign-in attempts', `Too many failed sign-ins. Wait ${wait}, then try again.`);
      }
      let identity;
      try {
        identity = await driver.authenticate(input.username, input.password);
      } catch (err) {
        unavailable(ctx, interaction, driver.config, err);
      }
      if (!identity) {
        failed(ctx, interaction, driver.config, 'wrong_credentials');
        return tools.renderLogin(ctx, interaction, { error: 'Incorrect username or password.', username: input.username.slice(0, 64), selected: driver.config.id }, 401);
      }
      await attempt.succeeded();
      await complete(ctx, driver.config, interaction.uid, identity);
    });

    router.post('/:uid/discover', async (ctx) => {
      const interaction = await tools.details(ctx);
      if (interaction.prompt.name !== 'login') throw new PageError(400, 'Sign-in expired', 'This sign-in request has expired. Go back to the app and start again.');
      const input = await tools.form(ctx, discoverForm, `interaction:${interaction.uid}`);
      const email = input.email.trim();
      const driver = registry.forEmail(email);
      if (driver?.start) {
        ctx.status = 303;
        return ctx.redirect(`${startHref(interaction.uid, driver.config.id)}?login_hint=${encodeURIComponent(email)}`);
      }
      if (driver?.authenticate) return tools.renderLogin(ctx, interaction, { username: email.slice(0, 64), selected: driver.config.id });
      if (config.localSignIn.enabled) return tools.renderLogin(ctx, interaction, { username: email.slice(0, 64) });
      return tools.renderLogin(ctx, interaction, { error: 'No sign-in service here is set up for that address.' }, 400);
    });
  }

  /**
   * `login_hint` naming an address on a connection's domain: the browser goes straight to that
   * connection (true when it was sent on), or its form is shown first.
   */
  function hinted(ctx: Context, interaction: LoginInteraction): { redirected: boolean; selected?: string; username?: string } {
    const hint = interaction.params.login_hint;
    if (typeof hint !== 'string') return { redirected: false };
    const driver = registry.forEmail(hint);
    if (driver?.start) {
      ctx.status = 303;
      ctx.redirect(startHref(interaction.uid, driver.config.id));
      return { redirected: true };
    }
    if (driver?.authenticate) return { redirected: false, selected: driver.config.id, username: hint.slice(0, 64) };
    return { redirected: false };
  }

  return { routes, complete: handOff, loginOptions, hinted };
}

export type ConnectionSignIn = ReturnType<typeof connectionSignIn>;
