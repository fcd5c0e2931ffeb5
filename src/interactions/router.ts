/**
 * The sign-in and consent pages. They reach the engine only through
 * `interactionDetails`, `interactionResult` and the Grant model, so they stay replaceable.
 *
 *   GET  /interaction/:uid          → login or consent page, whichever the engine asks for
 *   POST /interaction/:uid/login    → check the password, finish the login prompt
 *   POST /interaction/:uid/confirm  → grant the ticked scopes, finish the consent prompt
 *   POST /interaction/:uid/abort    → access_denied back to the client
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
import { readForm } from '../http/form-body.js';
import type { Logger } from '../observability/logger.js';
import { clientView, lifetimes, requestedResources } from './describe.js';
import { PageError } from '../http/page-error.js';

export interface InteractionDeps {
  config: Config;
  holder: ProviderHolder;
  resources: ResourceRegistry;
  accounts: AccountService;
  render: Render;
  csrf: Csrf;
  log: Logger;
  basePath: string;
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
  const { config, holder, resources, accounts, render, csrf, log, basePath } = deps;
  const router = new Router({ prefix: `${basePath}/interaction` });

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
    const raw = await readForm(ctx);
    // CSRF first: a form without a valid token is refused as such, whatever else it holds
    if (!csrf.verify(ctx, purpose, raw.csrf)) {
      throw new PageError(403, 'Request blocked', 'This form has expired or did not come from this site. Go back, reload the page and try again.');
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new PageError(400, 'Invalid request', 'The form was incomplete or malformed. Go back and try again.');
    return parsed.data;
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

  async function renderLogin(ctx: Context, interaction: Awaited<ReturnType<typeof details>>, extra: { error?: string; username?: string } = {}, status = 200) {
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
        client: clientView(client, interaction.params.redirect_uri),
        ...(first ? { resource: { name: first.resource.name, uri: first.resource.uri } } : {}),
        ...extra,
      },
      status,
    );
  }

  router.get('/:uid', async (ctx) => {
    const interaction = await details(ctx);
    const client = await holder.provider.Client.find(String(interaction.params.client_id));
    if (!client) throw expired();

    if (interaction.prompt.name === 'login') return renderLogin(ctx, interaction);
    if (interaction.prompt.name !== 'consent') throw new PageError(400, 'Unsupported request', 'This kind of sign-in request is not supported.');

    const account = interaction.session?.accountId ? await accounts.findById(interaction.session.accountId) : undefined;
    if (!account) throw expired();
    const requested = requestedResources(resources, client.clientId, interaction.params.resource, interaction.params.scope);
    const granted = alreadyGranted(interaction.grantId ? await holder.provider.Grant.find(interaction.grantId) : undefined, requested);
    allowRedirect(ctx, interaction.params.redirect_uri);
    render(ctx, 'consent', {
      title: 'Allow access?',
      action: `${basePath}/interaction/${interaction.uid}/confirm`,
      abortAction: `${basePath}/interaction/${interaction.uid}/abort`,
      csrf: csrf.issue(ctx, `interaction:${interaction.uid}`),
      account: { username: account.username },
      client: clientView(client, interaction.params.redirect_uri),
      resources: requested.map(({ resource, scopes }, i) => ({
        name: resource.name,
        uri: resource.uri,
        scopes: scopes.map((name) => {
          const scope = resource.scopes[name]!;
          const base = { value: `${i}:${name}`, name, description: scope.description, dangerous: scope.dangerous };
          // on step-up, what the person already allowed is shown as such; only the new scopes are asked
          if (granted[i]!.has(name)) return { ...base, checked: true, disabled: true, note: 'Already allowed' };
          return { ...base, checked: !scope.dangerous };
        }),
      })),
      lifetimes: lifetimes(config, requested, client),
    });
  });

  router.post('/:uid/login', async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'login') throw expired();
    const input = await form(ctx, loginForm, `interaction:${interaction.uid}`);
    const account = await accounts.authenticate(input.username, input.password);
    if (!account) {
      log.info({ requestId: ctx.state.requestId, event: 'login.failed' }, 'sign-in failed');
      return renderLogin(ctx, interaction, { error: 'Incorrect username or password.', username: input.username.slice(0, 64) }, 401);
    }
    log.info({ requestId: ctx.state.requestId, event: 'login.succeeded', accountId: account.id }, 'signed in');
    await finish(ctx, { login: { accountId: account.id, amr: ['pwd'] } }, false);
  });

  router.post('/:uid/confirm', async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'consent') throw expired();
    const input = await form(ctx, consentForm, `interaction:${interaction.uid}`);
    const { provider } = holder;
    const accountId = interaction.session?.accountId;
    const clientId = String(interaction.params.client_id);
    if (!accountId) throw expired();

    const requested = requestedResources(resources, clientId, interaction.params.resource, interaction.params.scope);
    const ticked = new Set(input.scope === undefined ? [] : Array.isArray(input.scope) ? input.scope : [input.scope]);
    const grant = (interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined) ?? new provider.Grant({ accountId, clientId });

    // OpenID scopes (sign-in itself) come with the sign-in; resource scopes only as ticked,
    // and only those the client may have for that server.
    const missing = interaction.prompt.details as { missingOIDCScope?: string[] };
    if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    let granted = 0;
    const defaultsGranted: string[] = [];
    const before = alreadyGranted(grant, requested);
    requested.forEach(({ indicator, scopes, defaulted }, i) => {
      const asked = scopes.filter((scope) => !before[i]!.has(scope));
      const chosen = asked.filter((scope) => ticked.has(`${i}:${scope}`));
      const refused = asked.filter((scope) => !ticked.has(`${i}:${scope}`));
      granted += before[i]!.size;
      if (chosen.length) grant.addResourceScope(indicator, chosen.join(' '));
      // remembered as refused, so the engine does not ask again within this grant
      if (refused.length) grant.rejectResourceScope(indicator, refused.join(' '));
      if (defaulted) defaultsGranted.push(...chosen);
      granted += chosen.length;
    });
    if (granted === 0 && requested.length > 0) {
      log.info({ requestId: ctx.state.requestId, event: 'consent.refused', clientId }, 'consent refused');
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
    log.info({ requestId: ctx.state.requestId, event: 'consent.granted', clientId, grantId }, 'consent granted');
    await finish(ctx, { consent: { grantId } }, true);
  });

  router.post('/:uid/abort', async (ctx) => {
    const interaction = await details(ctx);
    await form(ctx, csrfOnly, `interaction:${interaction.uid}`);
    log.info({ requestId: ctx.state.requestId, event: 'interaction.aborted', clientId: interaction.params.client_id }, 'sign-in cancelled');
    await finish(ctx, { error: 'access_denied', error_description: 'the user cancelled the request' }, false);
  });

  return router;
}
