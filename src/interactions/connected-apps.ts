/**
 * "Connected apps": a signed-in person sees every grant they gave (client, MCP servers and
 * scopes, when, last use) and revokes one, or all of them at once ("sign out of all apps").
 *
 *   GET  /account/apps             → the list, and the tool calls waiting for the person's approval
 *                                    (401 page when this browser is not signed in)
 *   POST /account/apps/revoke      → revoke one grant of the person's (404 page for any other)
 *   POST /account/apps/revoke-all  → revoke every grant, publish a subject revocation, end the browser session
 *
 * "Signed in" is oidc-provider's browser session (the cookie set when the person signed in
 * for an app), read from the store like src/provider/session-guard.ts does. Forms carry a CSRF
 * token bound to that session. Revocation itself is src/grants/revoke.ts.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Client } from 'oidc-provider';
import { z } from 'zod';
import type { GrantRecord, Store } from '../../adapters/contract.js';
import type { Config } from '../config/schema.js';
import type { ProviderHolder } from '../provider/holder.js';
import type { ResourceRegistry } from '../provider/resources.js';
import type { RevocationPublisher } from '../revocation/publisher.js';
import { moment, type AppView, type ClientView, type ConnectedAppsPage, type Render } from '../http/render.js';
import type { Csrf } from '../http/csrf.js';
import { readCheckedForm } from '../http/checked-form.js';
import { PageError } from '../http/page-error.js';
import type { Logger } from '../observability/logger.js';
import { SESSION_COOKIE } from '../provider/session-guard.js';
import { sessionPerson, type SessionPerson } from '../http/session-person.js';
import { revokeAllForAccount, revokeGrant } from '../grants/revoke.js';
import { clientView } from './describe.js';
import { APPROVALS_PATH, ACCOUNT_SECURITY_PATH, CONNECTED_APPS_PATH, signInHref } from '../http/account-paths.js';
import { isAccountClient } from '../provider/account-client.js';
import { describeToolCall } from '../tool-approvals/approval-page.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';

export { CONNECTED_APPS_PATH };

export interface ConnectedAppsDeps {
  config: Config;
  store: Store;
  holder: ProviderHolder;
  resources: ResourceRegistry;
  csrf: Csrf;
  publisher: RevocationPublisher;
  log: Logger;
  basePath: string;
  render: Render;
  audit: AuditLog;
}

type SignedIn = SessionPerson & { accountId: string; username: string };

const grantForm = z.object({ csrf: z.string().max(200), grant: z.string().min(1).max(200) });
const csrfOnly = z.object({ csrf: z.string().max(200) });
const NOTICES: Record<string, string> = { revoked: 'Done: that app can no longer access your account.' };

export function connectedAppsRouter(deps: ConnectedAppsDeps): Router {
  const { config, store, holder, resources, csrf, publisher, log, basePath, audit } = deps;
  const base = `${basePath}${CONNECTED_APPS_PATH}`;
  const staticClientIds = new Set(config.clients.map((c) => c.client_id));
  const secureCookies = new URL(config.issuer).protocol === 'https:';
  const router = new Router();

  const render = (ctx: Context, page: ConnectedAppsPage, status = 200) => deps.render(ctx, 'connected-apps', page, status);

  const notSignedIn = (ctx: Context) => render(ctx, { title: 'Connected apps', state: 'not-signed-in', signInHref: signInHref(basePath, base) }, 401);

  /** The person this browser is signed in as (src/http/session-person.ts); undefined when none. */
  async function signedIn(ctx: Context): Promise<SignedIn | undefined> {
    const person = await sessionPerson(ctx, store);
    return person && { ...person, accountId: person.account.id, username: person.account.username };
  }

  const purpose = (who: SignedIn) => `connected-apps:${who.uid}`;

  async function form<T extends z.ZodTypeAny>(ctx: Context, who: SignedIn, schema: T): Promise<z.infer<T>> {
    return readCheckedForm(ctx, csrf, purpose(who), schema);
  }

  /** How the app is presented: as on the consent page when the client is still known, else from the client directory. */
  async function describeClient(clientId: string): Promise<ClientView> {
    const client: Client | undefined = await holder.provider.Client.find(clientId).catch(() => undefined);
    if (client) return clientView(client, staticClientIds);
    const seen = await store.clients.get(clientId);
    return { id: clientId, name: seen?.name ?? clientId, nameIsSelfAsserted: true, host: 'no longer registered' };
  }

  async function describeGrant(record: GrantRecord): Promise<AppView | undefined> {
    const grant = await holder.provider.Grant.find(record.grantId);
    if (!grant || grant.accountId !== record.accountId) return undefined;
    const shown: AppView['resources'] = [];
    for (const indicator of Object.keys(grant.resources ?? {})) {
      const scopes = grant.getResourceScope(indicator).split(' ').filter(Boolean);
      if (scopes.length === 0) continue;
      const resource = resources.find(indicator);
      shown.push({
        name: resource?.name ?? indicator,
        uri: resource?.uri ?? indicator,
        scopes: scopes.map((name) => {
          const scope = resource?.scopes[name];
          return { name, ...(scope ? { description: scope.description } : {}), dangerous: scope?.dangerous ?? false };
        }),
      });
    }
    const identity = grant.getOIDCScope().split(' ').filter(Boolean).join(', ');
    return {
      grantId: record.grantId,
      client: await describeClient(record.clientId),
      resources: shown,
      ...(identity ? { identity } : {}),
      grantedAt: moment(record.createdAt),
      ...(record.lastUsedAt === undefined ? {} : { lastUsed: moment(record.lastUsedAt) }),
    };
  }

  router.get(base, async (ctx) => {
    const who = await signedIn(ctx);
    if (!who) return notSignedIn(ctx);
    // the account pages' own client is no app (it never has a stored grant: src/provider/account-client.ts)
    const records = (await store.grants.list({ accountId: who.accountId })).filter((record) => !isAccountClient(record.clientId));
    const apps = (await Promise.all(records.map(describeGrant))).filter((app): app is AppView => app !== undefined);
    // tool calls waiting for this person (decided on the approval page, src/tool-approvals/approval-page.ts)
    const pending = await store.toolApprovals.listPending(who.accountId, Date.now());
    const pendingApprovals = await Promise.all(
      pending.map(async (record) => ({ ...(await describeToolCall(deps, staticClientIds, record)), href: `${basePath}${APPROVALS_PATH}/${record.id}` })),
    );
    const notice = typeof ctx.query.done === 'string' ? NOTICES[ctx.query.done] : undefined;
    render(ctx, {
      title: 'Connected apps',
      state: 'list',
      account: { username: who.username },
      apps,
      pendingApprovals,
      ...(notice ? { notice } : {}),
      csrf: csrf.issue(ctx, purpose(who)),
      revokeAction: `${base}/revoke`,
      revokeAllAction: `${base}/revoke-all`,
      securityHref: `${basePath}${ACCOUNT_SECURITY_PATH}`,
    });
  });

  router.post(`${base}/revoke`, async (ctx) => {
    const who = await signedIn(ctx);
    if (!who) return notSignedIn(ctx);
    const input = await form(ctx, who, grantForm);
    const record = await store.grants.get(input.grant);
    // someone else's grant is answered exactly like one that does not exist
    if (!record || record.accountId !== who.accountId) {
      throw new PageError(404, 'App not found', 'This app is not connected to your account (any more). Go back and reload the page.');
    }
    await revokeGrant(store, publisher, record.grantId);
    log.info({ requestId: ctx.state.requestId, event: 'grant.revoked_by_user', grantId: record.grantId, clientId: record.clientId }, 'grant revoked by its person');
    audit.record({
      event: 'grant.revoked',
      outcome: 'success',
      actor: who.accountId,
      client: record.clientId,
      ...requestFacts(ctx),
      details: { grantId: record.grantId, by: 'person', accountId: who.accountId },
    });
    ctx.status = 303;
    ctx.redirect(`${base}?done=revoked`);
  });

  router.post(`${base}/revoke-all`, async (ctx) => {
    const who = await signedIn(ctx);
    if (!who) return notSignedIn(ctx);
    await form(ctx, who, csrfOnly);
    const revoked = await revokeAllForAccount(store, publisher, who.accountId, who.grantIds);
    // and this browser's sign-in ends: the next app must ask for the password again
    await store.model('Session').destroy(who.sessionId);
    ctx.cookies.set(SESSION_COOKIE, null, { signed: true, httpOnly: true, sameSite: 'lax', secure: secureCookies, path: '/' });
    log.info({ requestId: ctx.state.requestId, event: 'grants.revoked_all_by_user', accountId: who.accountId, count: revoked.length }, 'signed out of all apps');
    for (const grantId of revoked) {
      audit.record({
        event: 'grant.revoked',
        outcome: 'success',
        actor: who.accountId,
        ...requestFacts(ctx),
        details: { grantId, by: 'person_signed_out_of_all_apps', accountId: who.accountId },
      });
    }
    render(ctx, { title: 'Signed out', state: 'signed-out', revokedCount: revoked.length });
  });

  return router;
}
