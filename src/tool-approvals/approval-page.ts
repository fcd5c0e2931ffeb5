/**
 * The page on which a person approves or refuses one MCP tool call (issue #15):
 *
 *   GET  /approvals/:id   → who asks (the client), where (the MCP server), which tool, and what
 *                           it will do (the server's summary); the approve and refuse buttons
 *   POST /approvals/:id   → the decision (CSRF-checked; with a second factor where policy asks)
 *
 * Only the person the request is for sees it: anyone else, a browser signed in as someone
 * else and an unknown id all get the same 404 page. A request that is decided or expired shows
 * its state and cannot be decided again (the store's decide() changes a pending record only).
 * Policy (`toolApprovals.policies[].secondFactor`): `if_enrolled` (default) asks a person who has
 * an authenticator app or a passkey for it with the approval (a code from the app or a recovery
 * code, or the passkey: `POST /approvals/:id/passkey/options` gives the WebAuthn challenge,
 * kept in the store for this session and request, and the approval carries the credential);
 * `always` refuses to approve for a person with no second factor; `off` never asks.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Client } from 'oidc-provider';
import { z } from 'zod';
import type { Store, ToolApprovalRecord } from '../../adapters/contract.js';
import { hasFactor } from '../accounts/second-factors.js';
import type { Config } from '../config/schema.js';
import type { Csrf } from '../http/csrf.js';
import { ACCOUNT_SECURITY_PATH, APPROVALS_PATH, CONNECTED_APPS_PATH, signInHref } from '../http/account-paths.js';
import { readCheckedForm } from '../http/checked-form.js';
import { describeWait, tooManyRequestsPage } from '../http/limits.js';
import { PageError } from '../http/page-error.js';
import { moment, type Render, type ToolApprovalPage, type ToolCallView } from '../http/render.js';
import { sessionPerson, type SessionPerson } from '../http/session-person.js';
import { clientView } from '../interactions/describe.js';
import type { ProviderHolder } from '../provider/holder.js';
import type { ResourceRegistry } from '../provider/resources.js';
import type { FactorCheck } from '../second-factors/check.js';
import { parseCredential, type RelyingParty } from '../second-factors/passkeys.js';
import { SingleUseRecords } from '../../adapters/single-use-records.js';
import { requestFacts } from '../audit/request-facts.js';
import type { ToolApprovalService } from './service.js';

export interface ApprovalPageDeps {
  config: Config;
  store: Store;
  holder: ProviderHolder;
  resources: ResourceRegistry;
  csrf: Csrf;
  render: Render;
  basePath: string;
  check: FactorCheck;
  rp: RelyingParty;
  approvals: ToolApprovalService;
}

const decisionForm = z.object({
  csrf: z.string().max(200),
  decision: z.enum(['approve', 'refuse']),
  code: z.string().max(64).optional(),
  credential: z.string().max(16_384).optional(),
});
const csrfOnly = z.object({ csrf: z.string().max(200) });

const ID = /^[A-Za-z0-9_-]{16,200}$/;

/** How a request is presented: the client as on the consent page, the MCP server by its configured name. */
export async function describeToolCall(deps: Pick<ApprovalPageDeps, 'holder' | 'resources' | 'store'>, staticIds: ReadonlySet<string>, record: ToolApprovalRecord): Promise<ToolCallView> {
  const client: Client | undefined = await deps.holder.provider.Client.find(record.clientId).catch(() => undefined);
  const seen = client ? undefined : await deps.store.clients.get(record.clientId);
  const resource = deps.resources.find(record.resource);
  return {
    client: client ? clientView(client, staticIds) : { id: record.clientId, name: seen?.name ?? record.clientId, nameIsSelfAsserted: true, host: 'no longer registered' },
    resource: { name: resource?.name ?? record.resource, uri: resource?.uri ?? record.resource },
    tool: record.tool,
    summary: record.summary,
    requested: moment(record.createdAt),
    expires: moment(record.expiresAt),
  };
}

export function approvalPageRouter(deps: ApprovalPageDeps): Router {
  const { config, store, csrf, basePath, check, rp, approvals } = deps;
  const base = `${basePath}${APPROVALS_PATH}`;
  const appsHref = `${basePath}${CONNECTED_APPS_PATH}`;
  const securityHref = `${basePath}${ACCOUNT_SECURITY_PATH}`;
  const staticIds = new Set(config.clients.map((c) => c.client_id));
  const router = new Router();
  const challenges = new SingleUseRecords<{ accountId: string; challenge: string }>(store, 'PasskeyChallenge', 300);
  const challengeKey = (person: SessionPerson, record: ToolApprovalRecord) => `approval:${person.uid}:${record.id}`;

  const render = (ctx: Context, page: ToolApprovalPage, status = 200) => deps.render(ctx, 'tool-approval', page, status);
  const notFound = () => new PageError(404, 'Request not found', 'There is no such request for your account (any more). Go back to the app and try again.');
  const purpose = (person: SessionPerson, id: string) => `tool-approval:${person.uid}:${id}`;

  /** The person and their request, or an answer already given (undefined). */
  async function load(ctx: Context): Promise<{ person: SessionPerson; record: ToolApprovalRecord } | undefined> {
    const id = String(ctx.params.id ?? '');
    const person = await sessionPerson(ctx, store);
    if (!person) {
      render(ctx, { title: 'Approve an action', state: 'not-signed-in', signInHref: signInHref(basePath, `${base}/${ID.test(id) ? id : ''}`) }, 401);
      return undefined;
    }
    const record = ID.test(id) ? await store.toolApprovals.get(id) : undefined;
    // someone else's request is answered exactly like one that does not exist
    if (!record || record.accountId !== person.account.id) throw notFound();
    return { person, record };
  }

  async function show(ctx: Context, person: SessionPerson, record: ToolApprovalRecord, extra: { error?: string } = {}, status = 200) {
    const call = await describeToolCall(deps, staticIds, record);
    const account = { username: person.account.username };
    if (record.status !== 'pending') {
      const state = record.status === 'denied' ? 'refused' : record.status === 'approved' || record.status === 'redeemed' ? 'approved' : 'decided';
      return render(ctx, { title: 'Approve an action', state, account, call, appsHref }, status);
    }
    if (record.expiresAt <= Date.now()) return render(ctx, { title: 'Approve an action', state: 'expired', account, call, appsHref }, status);
    const rule = (await approvals.policyFor(record)).secondFactor;
    const factors = check.factorsOf(ctx, person.account);
    const enrolled = hasFactor(factors);
    const askFactor = rule !== 'off' && enrolled;
    render(
      ctx,
      {
        title: 'Approve an action',
        state: 'decide',
        account,
        call,
        csrf: csrf.issue(ctx, purpose(person, record.id)),
        action: `${base}/${record.id}`,
        askCode: askFactor,
        ...(askFactor && config.secondFactor.passkeys && factors.passkeys.length > 0 ? { passkey: { optionsAction: `${base}/${record.id}/passkey/options` } } : {}),
        ...(rule === 'always' && !enrolled ? { needsEnrolment: { securityHref } } : {}),
        ...extra,
        appsHref,
      },
      status,
    );
  }

  /** The passkey credential against the challenge this session was given for this request (once). */
  async function passkeyCheck(ctx: Context, person: SessionPerson, record: ToolApprovalRecord, credential: string) {
    const kept = await challenges.take(challengeKey(person, record));
    if (!kept || kept.accountId !== person.account.id) return { ok: false as const };
    return check.passkey(ctx, person.account, parseCredential(credential) ?? {}, kept.challenge, 'approval');
  }

  router.post(`${base}/:id/passkey/options`, async (ctx) => {
    const found = await load(ctx);
    if (!found) return;
    const { person, record } = found;
    await readCheckedForm(ctx, csrf, purpose(person, record.id), csrfOnly);
    const factors = check.factorsOf(ctx, person.account);
    if (!config.secondFactor.passkeys || factors.passkeys.length === 0 || record.status !== 'pending') throw notFound();
    const options = await rp.authenticationOptions(factors.passkeys);
    await challenges.put(challengeKey(person, record), { accountId: person.account.id, challenge: options.challenge });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = options;
  });

  router.get(`${base}/:id`, async (ctx) => {
    const found = await load(ctx);
    if (!found) return;
    ctx.set('Referrer-Policy', 'no-referrer');
    await show(ctx, found.person, found.record);
  });

  router.post(`${base}/:id`, async (ctx) => {
    const found = await load(ctx);
    if (!found) return;
    const { person, record } = found;
    const input = await readCheckedForm(ctx, csrf, purpose(person, record.id), decisionForm);
    if (record.status !== 'pending' || record.expiresAt <= Date.now()) return show(ctx, person, record, {}, 409);
    if (input.decision === 'refuse') {
      await approvals.decide(record.id, person.account.id, 'denied', false, requestFacts(ctx));
      return show(ctx, person, (await store.toolApprovals.get(record.id)) ?? record);
    }
    const rule = (await approvals.policyFor(record)).secondFactor;
    const enrolled = hasFactor(check.factorsOf(ctx, person.account));
    if (rule === 'always' && !enrolled) return show(ctx, person, record, {}, 403);
    let secondFactor = false;
    if (rule !== 'off' && enrolled) {
      const result = input.credential !== undefined ? await passkeyCheck(ctx, person, record, input.credential) : await check.code(ctx, person.account, input.code ?? '', 'approval');
      if (!result.ok && result.refused) return tooManyRequestsPage(ctx, deps.render, result.refused.retryAfterMs, 'Too many attempts', `Too many wrong codes. Try again in ${describeWait(result.refused.retryAfterMs)}.`);
      if (!result.ok) {
        const error = input.credential !== undefined ? 'The passkey could not be checked. Try again.' : 'That code is not right, or it was used already.';
        return show(ctx, person, record, { error }, 401);
      }
      secondFactor = true;
    }
    const outcome = await approvals.decide(record.id, person.account.id, 'approved', secondFactor, requestFacts(ctx));
    if (outcome === 'second_factor_required') return show(ctx, person, record, { error: 'Approving this action needs your second factor.' }, 401);
    await show(ctx, person, (await store.toolApprovals.get(record.id)) ?? record);
  });

  return router;
}
