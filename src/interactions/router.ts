/**
 * The sign-in and consent pages. They reach the engine only through
 * `interactionDetails`, `interactionResult` and the Grant model, so they stay replaceable.
 *
 *   GET  /interaction/:uid          → login or consent page, whichever the engine asks for
 *   POST /interaction/:uid/login    → check the password, finish the login prompt
 *   POST /interaction/:uid/confirm  → grant the ticked scopes, finish the consent prompt
 *   POST /interaction/:uid/abort    → access_denied back to the client
 *
 * A second factor (src/second-factors/sign-in-step.ts) comes between the password and the end
 * of the login, and between a consent ticking a dangerous scope and its grant (step-up).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import type { ProviderHolder } from '../provider/holder.js';
import type { ResourceRegistry } from '../provider/resources.js';
import type { AccountService } from '../accounts/service.js';
import type { Render } from '../http/render.js';
import { allowFormAction } from '../http/security-headers.js';
import type { Csrf } from '../http/csrf.js';
import { readCheckedForm } from '../http/checked-form.js';
import type { Logger } from '../observability/logger.js';
import { consentChoices, decide } from './consent-choices.js';
import { clientView, lifetimes, maskUserCode, requestedResources } from './describe.js';
import { PageError } from '../http/page-error.js';
import { describeWait, tooManyRequestsPage, type RateLimits } from '../http/limits.js';
import type { TrustedBrowsers } from '../http/trusted-browser.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';
import type { ConnectionSignIn, LoginExtra } from './connection-sign-in.js';
import type { FinishLogin } from './finish-login.js';
import type { SecondFactorStep } from '../second-factors/sign-in-step.js';
import { isAccountClient } from '../provider/account-client.js';

export interface InteractionDeps {
  config: Config;
  holder: ProviderHolder;
  resources: ResourceRegistry;
  accounts: AccountService;
  render: Render;
  csrf: Csrf;
  log: Logger;
  basePath: string;
  /** sign-in attempts per account and per source (src/http/limits.ts) */
  limits: RateLimits;
  /** browsers that signed in to an account before, which the sign-in limits treat apart */
  trusted: TrustedBrowsers;
  audit: AuditLog;
  /** sign-in through upstream connections (OIDC, SAML, LDAP) and home-realm discovery */
  connections: ConnectionSignIn;
  finishLogin: FinishLogin;
  /** the second-factor step at sign-in and before dangerous scopes */
  secondFactors: SecondFactorStep;
}

const uidParam = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const loginForm = z.object({
  csrf: z.string().max(200),
  username: z.string().max(256),
  password: z.string().max(1024),
});
const consentForm = z.object({
  csrf: z.string().max(200),
  scope: z.union([z.string().max(300), z.array(z.string().max(300)).max(200)]).optional(),
});
const csrfOnly = z.object({ csrf: z.string().max(200) });

/** The page's form may end in a redirect to the client: CSP form-action must allow it. */
function allowRedirect(ctx: Context, redirectUri: unknown) {
  if (typeof redirectUri === 'string') allowFormAction(ctx, redirectUri);
}

const expired = () =>
  new PageError(400, 'Sign-in expired', 'This sign-in request has expired or was opened in another browser. Go back to the app and start again.');

export function interactionRouter(deps: InteractionDeps): Router {
  const { config, holder, resources, accounts, render, csrf, log, basePath, limits, audit, trusted, connections, finishLogin, secondFactors } = deps;
  const router = new Router({ prefix: `${basePath}/interaction` });
  const staticClientIds = new Set(config.clients.map((c) => c.client_id));

  async function details(ctx: Context) {
    if (!uidParam.safeParse(ctx.params.uid).success) throw expired();
    try {
      const interaction = await holder.provider.interactionDetails(ctx.req, ctx.res);
      if (interaction.uid !== ctx.params.uid) throw expired();
      return interaction;
    } catch (err) {
      if (err instanceof PageError) throw err;
      // SessionNotFound and friends: the cookie is gone or does not belong to this uid.
      throw expired();
    }
  }

  async function form<T extends z.ZodTypeAny>(ctx: Context, schema: T, purpose: string): Promise<z.infer<T>> {
    return readCheckedForm(ctx, csrf, purpose, schema);
  }

  /** Removes scopes from what the grant remembers as refused, so they can be granted again. */
  function allowAgain(grant: { rejected?: { resources?: Record<string, string> } }, indicator: string, scopes: string[]) {
    const refused = grant.rejected?.resources?.[indicator];
    if (!refused) return;
    const remaining = refused.split(' ').filter((scope) => scope && !scopes.includes(scope));
    if (remaining.length) grant.rejected!.resources![indicator] = remaining.join(' ');
    else delete grant.rejected!.resources![indicator];
  }

  /** Per requested resource, the scopes the existing grant already allows (step-up keeps them). */
  function alreadyGranted(grant: { getResourceScope(resource: string): string } | undefined, requested: ReturnType<typeof requestedResources>): Set<string>[] {
    return requested.map(({ indicator }) => new Set((grant?.getResourceScope(indicator) ?? '').split(' ').filter(Boolean)));
  }

  async function finish(ctx: Context, result: Parameters<typeof holder.provider.interactionResult>[2], merge: boolean) {
    const returnTo = await holder.provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.redirect(returnTo);
  }

  async function renderLogin(ctx: Context, interaction: { uid: string; params: Record<string, unknown> }, extra: LoginExtra = {}, status = 200) {
    const client = await holder.provider.Client.find(String(interaction.params.client_id));
    if (!client) throw expired();
    const [first] = requestedResources(resources, client.clientId, interaction.params.resource, interaction.params.scope);
    allowRedirect(ctx, interaction.params.redirect_uri);
    render(
      ctx,
      'login',
      {
        title: 'Sign in',
        action: `${basePath}/interaction/${interaction.uid}/login`,
        abortAction: `${basePath}/interaction/${interaction.uid}/abort`,
        csrf: csrf.issue(ctx, `interaction:${interaction.uid}`),
        client: clientView(client, staticClientIds, interaction.params.redirect_uri),
        ...(first ? { resource: { name: first.resource.name, uri: first.resource.uri } } : {}),
        ...connections.loginOptions(interaction.uid, ctx),
        ...extra,
      },
      status,
    );
  }

  connections.routes(router, { details, renderLogin, form });
  secondFactors.routes(router, { details, form, grantConsent, dangerousTicked });

  router.get('/:uid', async (ctx) => {
    const interaction = await details(ctx);
    const client = await holder.provider.Client.find(String(interaction.params.client_id));
    if (!client) throw expired();

    if (interaction.prompt.name === 'login') {
      const hint = connections.hinted(ctx, interaction);
      if (hint.redirected) return;
      return renderLogin(ctx, interaction, { ...(hint.selected ? { selected: hint.selected } : {}), ...(hint.username ? { username: hint.username } : {}) });
    }
    if (interaction.prompt.name !== 'consent') throw new PageError(400, 'Unsupported request', 'This kind of sign-in request is not supported.');
    // the account pages' client is never given consent (src/provider/account-client.ts); a request
    // of it that would need some asks for more than a sign-in
    if (isAccountClient(client.clientId)) throw new PageError(400, 'Unsupported request', 'This kind of sign-in request is not supported.');

    const account = interaction.session?.accountId ? await accounts.findById(interaction.session.accountId) : undefined;
    if (!account) throw expired();
    const requested = requestedResources(resources, client.clientId, interaction.params.resource, interaction.params.scope);
    const granted = alreadyGranted(interaction.grantId ? await holder.provider.Grant.find(interaction.grantId) : undefined, requested);
    const choices = requested.map((r, i) => consentChoices(resources, r, granted[i]!, account));
    log.info(
      {
        requestId: ctx.state.requestId,
        event: 'consent.offered',
        clientId: client.clientId,
        accountId: account.id,
        resources: requested.map((r, i) => ({
          resource: r.resource.uri,
          asked: choices[i]!.filter((c) => c.state === 'ask').map((c) => c.scope),
          kept: choices[i]!.filter((c) => c.state === 'kept').map((c) => c.scope),
          unavailable: choices[i]!.filter((c) => c.state === 'unavailable').map((c) => c.scope),
        })),
      },
      'consent offered',
    );
    requested.forEach((r, i) => {
      const offered = choices[i]!;
      audit.record({
        event: 'consent.offered',
        outcome: 'success',
        actor: account.id,
        client: client.clientId,
        resource: r.resource.uri,
        ...requestFacts(ctx),
        details: {
          scopes: offered.filter((c) => c.state === 'ask').map((c) => c.scope),
          kept: offered.filter((c) => c.state === 'kept').map((c) => c.scope),
          unavailable: offered.filter((c) => c.state === 'unavailable').map((c) => c.scope),
        },
      });
    });
    allowRedirect(ctx, interaction.params.redirect_uri);
    // a device flow shows the code again, so a person never approves a device they did not start
    const deviceCode = (interaction as { deviceCode?: string }).deviceCode;
    const userCode = deviceCode ? (await holder.provider.DeviceCode.find(deviceCode))?.userCode : undefined;
    render(ctx, 'consent', {
      title: 'Allow access?',
      ...(userCode ? { userCode: maskUserCode(userCode, config.deviceFlow.mask) } : {}),
      action: `${basePath}/interaction/${interaction.uid}/confirm`,
      abortAction: `${basePath}/interaction/${interaction.uid}/abort`,
      csrf: csrf.issue(ctx, `interaction:${interaction.uid}`),
      account: { username: account.username },
      client: clientView(client, staticClientIds, interaction.params.redirect_uri),
      resources: requested.map(({ resource }, i) => ({
        name: resource.name,
        uri: resource.uri,
        scopes: choices[i]!.map(({ scope: name, state, preselected }) => {
          const scope = resource.scopes[name]!;
          const base = { value: `${i}:${name}`, name, description: scope.description, dangerous: scope.dangerous, tools: scope.tools };
          if (state === 'unavailable') return { ...base, checked: false, disabled: true, note: 'Not available to you' };
          // on step-up, what the person already allowed is shown as such; only the new scopes are asked
          if (state === 'kept') return { ...base, checked: true, disabled: true, note: 'Already allowed' };
          if (scope.dangerous && granted[i]!.has(name)) return { ...base, checked: false, note: 'Allowed before — sensitive permissions are asked every time' };
          return { ...base, checked: preselected };
        }),
      })),
      lifetimes: lifetimes(config, requested, client),
    });
  });

  router.post('/:uid/login', async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'login') throw expired();
    if (!config.localSignIn.enabled) throw new PageError(404, 'Not found', 'Sign-in with a local password is turned off here.');
    const input = await form(ctx, loginForm, `interaction:${interaction.uid}`);
    // counted before the password is looked at: while limited, even the right one is refused;
    // a browser that signed in to this account before is counted on its own (src/http/trusted-browser.ts)
    const named = await accounts.findByUsername(input.username);
    const browser = trusted.read(ctx);
    const trustedBrowser = named && browser?.accounts.includes(named.id) ? browser.id : undefined;
    const attempt = await limits.signIn(input.username, ctx.ip, trustedBrowser);
    if ('refused' in attempt) {
      const { refused } = attempt;
      limits.logHit(ctx, refused, named && refused.key !== 'source' ? { accountId: named.id } : {});
      const wait = describeWait(refused.retryAfterMs);
      const message =
        refused.key === 'account'
          ? `This account has had too many failed sign-ins from many places. A browser that has signed in to it before can still sign in; from this one, wait ${wait}.`
          : `Too many failed sign-ins ${refused.key === 'source' ? 'from here' : 'for this account from here'}. Wait ${wait}, then try again: every attempt before then makes the wait longer.`;
      return tooManyRequestsPage(ctx, render, refused.retryAfterMs, 'Too many sign-in attempts', message);
    }
    const account = await accounts.authenticate(input.username, input.password);
    const client = typeof interaction.params.client_id === 'string' ? { client: interaction.params.client_id } : {};
    if (!account) {
      log.info({ requestId: ctx.state.requestId, event: 'login.failed' }, 'sign-in failed');
      // the account is named only if it exists: a username typed wrong may be a password
      audit.record({
        event: 'login.failed',
        outcome: 'failure',
        ...client,
        ...requestFacts(ctx),
        details: { reason: named ? 'wrong_password' : 'unknown_account', ...(named ? { accountId: named.id } : {}) },
      });
      return renderLogin(ctx, interaction, { error: 'Incorrect username or password.', username: input.username.slice(0, 64) }, 401);
    }
    await attempt.succeeded();
    trusted.remember(ctx, account.id);
    await finishLogin(ctx, interaction, { account, method: 'password', amr: ['pwd'] });
  });

  router.post('/:uid/confirm', async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'consent') throw expired();
    if (isAccountClient(interaction.params.client_id)) throw expired();
    const input = await form(ctx, consentForm, `interaction:${interaction.uid}`);
    const ticked = new Set(input.scope === undefined ? [] : Array.isArray(input.scope) ? input.scope : [input.scope]);
    const accountId = interaction.session?.accountId;
    const account = accountId ? await accounts.findById(accountId) : undefined;
    if (!account) throw expired();
    // a ticked dangerous scope may need the second factor first (step-up); the decision waits for it
    if (dangerousTicked(interaction, ticked).length && (await secondFactors.stepUp(ctx, interaction, account, ticked))) return;
    await grantConsent(ctx, interaction, ticked);
  });

  /** The ticked checkbox values (`<resource index>:<scope>`) that are dangerous scopes. */
  function dangerousTicked(interaction: { params: Record<string, unknown> }, ticked: Set<string>): string[] {
    return requestedResources(resources, String(interaction.params.client_id), interaction.params.resource, interaction.params.scope).flatMap(({ resource }, i) =>
      Object.entries(resource.scopes).flatMap(([name, scope]) => (scope.dangerous && ticked.has(`${i}:${name}`) ? [`${i}:${name}`] : [])),
    );
  }

  /** Grants what `ticked` allows and finishes the consent prompt (with `login` after a step-up). */
  async function grantConsent(
    ctx: Context,
    interaction: Awaited<ReturnType<typeof details>>,
    ticked: Set<string>,
    login?: { accountId: string; amr: string[]; acr: string },
  ): Promise<void> {
    const { provider } = holder;
    const accountId = interaction.session?.accountId;
    const clientId = String(interaction.params.client_id);
    if (!accountId || (login && login.accountId !== accountId) || isAccountClient(clientId)) throw expired();

    const account = await accounts.findById(accountId);
    if (!account) throw expired();
    const requested = requestedResources(resources, clientId, interaction.params.resource, interaction.params.scope);
    const grant = (interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined) ?? new provider.Grant({ accountId, clientId });

    // OpenID scopes (sign-in itself) come with the sign-in; resource scopes only as ticked,
    // and only those the client may have for that server and the person may be granted.
    const missing = interaction.prompt.details as { missingOIDCScope?: string[] };
    if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    let granted = 0;
    const defaultsGranted: string[] = [];
    const before = alreadyGranted(grant, requested);
    const decisions = requested.map((r, i) => decide(consentChoices(resources, r, before[i]!, account), (scope) => ticked.has(`${i}:${scope}`)));
    requested.forEach(({ indicator, defaulted }, i) => {
      const decision = decisions[i]!;
      // a dangerous scope refused before and ticked now is allowed again
      if (decision.granted.length) allowAgain(grant, indicator, decision.granted);
      if (decision.granted.length) grant.addResourceScope(indicator, decision.granted.join(' '));
      // remembered as refused, so the engine does not ask again within this grant; a dangerous
      // scope allowed before and not ticked this time is withdrawn
      const refused = [...decision.refused, ...decision.unavailable];
      if (refused.length) grant.rejectResourceScope(indicator, refused.join(' '));
      if (defaulted) defaultsGranted.push(...decision.granted);
      granted += decision.kept.length + decision.granted.length;
    });
    const outcome = requested.map(({ resource }, i) => ({ resource: resource.uri, ...decisions[i]! }));
    // one record per MCP server: a server of which nothing is allowed is refused, even in a grant
    const recordDecision = (grantId?: string) => {
      for (const { resource, granted: allowed, refused, kept, unavailable } of outcome) {
        const event = grantId && allowed.length + kept.length > 0 ? 'consent.granted' : 'consent.refused';
        audit.record({
          event,
          outcome: event === 'consent.granted' ? 'success' : 'failure',
          actor: accountId,
          client: clientId,
          resource,
          ...requestFacts(ctx),
          details: { scopes: allowed, refused, kept, unavailable, ...(grantId ? { grantId } : {}) },
        });
      }
    };
    if (granted === 0 && requested.length > 0) {
      log.info({ requestId: ctx.state.requestId, event: 'consent.refused', clientId, accountId, resources: outcome }, 'consent refused');
      recordDecision();
      return finish(ctx, { error: 'access_denied', error_description: 'the user granted none of the requested scopes' }, false);
    }
    if (defaultsGranted.length) {
      // the request named no scope for these servers: record the defaults the person granted as
      // requested, so the authorization code (and the tokens) carry them
      const asked = typeof interaction.params.scope === 'string' ? interaction.params.scope.split(' ').filter(Boolean) : [];
      interaction.params.scope = [...new Set([...asked, ...defaultsGranted])].join(' ');
      await interaction.save(Math.max(1, (interaction.exp ?? 0) - Math.floor(Date.now() / 1000)));
    }
    const grantId = await grant.save();
    log.info({ requestId: ctx.state.requestId, event: 'consent.granted', clientId, accountId, grantId, resources: outcome }, 'consent granted');
    recordDecision(grantId);
    await finish(ctx, { ...(login ? { login } : {}), consent: { grantId } }, true);
  }

  router.post('/:uid/abort', async (ctx) => {
    const interaction = await details(ctx);
    await form(ctx, csrfOnly, `interaction:${interaction.uid}`);
    log.info({ requestId: ctx.state.requestId, event: 'interaction.aborted', clientId: interaction.params.client_id }, 'sign-in cancelled');
    const accountId = interaction.session?.accountId;
    if (interaction.prompt.name === 'consent' && accountId) {
      // "Deny" on the consent page: everything asked is refused
      const clientId = String(interaction.params.client_id);
      for (const { resource } of requestedResources(resources, clientId, interaction.params.resource, interaction.params.scope)) {
        audit.record({
          event: 'consent.refused',
          outcome: 'failure',
          actor: accountId,
          client: clientId,
          resource: resource.uri,
          ...requestFacts(ctx),
          details: { reason: 'denied' },
        });
      }
    }
    await finish(ctx, { error: 'access_denied', error_description: 'the user cancelled the request' }, false);
  });

  return router;
}
