/**
 * The second-factor step inside an interaction, after the first factor and before the engine
 * hears of the login — or, for step-up, before a consent grants a dangerous scope.
 *
 *   GET  /interaction/:uid/second-factor                   → the page: a code, a passkey, or enrolment
 *   POST /interaction/:uid/second-factor                   → a TOTP or recovery code (or the first code of an enrolment)
 *   POST /interaction/:uid/second-factor/continue          → after the recovery codes of an enrolment were shown
 *   POST /interaction/:uid/second-factor/passkey/options   → WebAuthn request options (JSON); the challenge is kept here
 *   POST /interaction/:uid/second-factor/passkey           → the passkey's answer
 *   POST /interaction/:uid/second-factor/skip              → step-up declined: the consent without its dangerous scopes
 *
 * Who passed the first factor is kept server-side in a short-lived record (the store's
 * `SecondFactorPending`), never in the browser: the browser holds only the record's random key
 * in a cookie, the record names the interaction it is for, and it is taken (used up) when the
 * step succeeds. Forms carry the interaction's CSRF token. Attempts count against the sign-in
 * limits (src/second-factors/check.ts); a refusal is a 429 page.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Provider } from 'oidc-provider';
import { z } from 'zod';
import type { AccountRecord, Store } from '../../adapters/contract.js';
import { hasFactor, type SecondFactors } from '../accounts/second-factors.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';
import type { Config } from '../config/schema.js';
import type { Csrf } from '../http/csrf.js';
import { describeWait, tooManyRequestsPage, type Refusal } from '../http/limits.js';
import { PageError } from '../http/page-error.js';
import type { Render, SecondFactorPage } from '../http/render.js';
import { allowFormAction } from '../http/security-headers.js';
import { clientView } from '../interactions/describe.js';
import type { FinishLogin, LoginInteraction, PrimaryLogin, SecondFactorGate } from '../interactions/finish-login.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderHolder } from '../provider/holder.js';
import type { FactorCheck } from './check.js';
import { parseCredential, type RelyingParty } from './passkeys.js';
import { acrFor, hasSecondFactorAmr, policyRequires, withSecondFactor } from './policy.js';
import { newRecoveryCodes } from './recovery-codes.js';
import { SingleUseRecords } from '../../adapters/single-use-records.js';
import { newTotpSecret, totpUri } from './totp.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/** What is kept between the first factor and the second. */
interface Pending {
  uid: string;
  accountId: string;
  purpose: 'sign-in' | 'step-up';
  /** the first factor (sign-in) */
  login?: { method: PrimaryLogin['method']; connection?: string; amr: string[] };
  /** the session's methods (step-up) */
  amr?: string[];
  /** the ticked consent checkboxes (step-up) */
  scopes?: string[];
  /** a TOTP secret being enrolled because policy requires a factor */
  enrolSecret?: string;
  /** the enrolment was saved and its recovery codes shown: `continue` finishes */
  enrolled?: boolean;
  /** the WebAuthn challenge last sent */
  challenge?: string;
}

/** What the interaction router lends the step. */
export interface StepHelpers {
  details(ctx: Context): Promise<Interaction>;
  form<T extends z.ZodTypeAny>(ctx: Context, schema: T, purpose: string): Promise<z.infer<T>>;
  /** grants the consent for `ticked` checkbox values, finishing with `login` too */
  grantConsent(ctx: Context, interaction: Interaction, ticked: Set<string>, login?: { accountId: string; amr: string[]; acr: string }): Promise<void>;
  /** the ticked values that are dangerous scopes */
  dangerousTicked(interaction: Interaction, ticked: Set<string>): string[];
}

export interface SecondFactorStepDeps {
  config: Config;
  store: Store;
  holder: ProviderHolder;
  render: Render;
  csrf: Csrf;
  log: Logger;
  audit: AuditLog;
  basePath: string;
  check: FactorCheck;
  rp: RelyingParty;
  /** ends the login prompt (src/interactions/finish-login.ts loginCompleter) */
  complete: FinishLogin;
}

const PENDING_TTL = 600;
const COOKIE = 'mcp-authz.2fa';

const codeForm = z.object({ csrf: z.string().max(200), code: z.string().max(64) });
const csrfOnly = z.object({ csrf: z.string().max(200) });
const passkeyForm = z.object({ csrf: z.string().max(200), credential: z.string().max(16_384) });

const expired = () =>
  new PageError(400, 'Sign-in expired', 'This sign-in request has expired or was opened in another browser. Go back to the app and start again.');

export interface SecondFactorStep {
  /** for src/interactions/finish-login.ts */
  gate: SecondFactorGate;
  /** Before a consent grants ticked dangerous scopes: true when it took over (the page is shown). */
  stepUp(ctx: Context, interaction: Interaction, account: AccountRecord, ticked: Set<string>): Promise<boolean>;
  routes(router: Router, helpers: StepHelpers): void;
}

export function secondFactorStep(deps: SecondFactorStepDeps): SecondFactorStep {
  const { config, store, holder, render, csrf, log, audit, basePath, check, rp, complete } = deps;
  const policy = config.secondFactor;
  const pending = new SingleUseRecords<Pending>(store, 'SecondFactorPending', PENDING_TTL);
  const staticClientIds = new Set(config.clients.map((c) => c.client_id));
  const secureCookies = new URL(config.issuer).protocol === 'https:';
  const cookiePath = `${basePath}/interaction`;
  const pagePath = (uid: string) => `${basePath}/interaction/${uid}/second-factor`;

  async function begin(ctx: Context, record: Pending) {
    const key = SingleUseRecords.newKey();
    await pending.put(key, record);
    ctx.cookies.set(COOKIE, key, { signed: true, httpOnly: true, sameSite: 'lax', secure: secureCookies, path: cookiePath, overwrite: true });
    ctx.status = 303;
    ctx.redirect(pagePath(record.uid));
  }

  /** This browser's pending step for the interaction `uid`, and its key. */
  async function current(ctx: Context, uid: string): Promise<{ key: string; record: Pending }> {
    const key = ctx.cookies.get(COOKIE, { signed: true });
    const record = await pending.peek(key);
    if (!key || !record || record.uid !== uid) throw expired();
    return { key, record };
  }

  function forget(ctx: Context) {
    ctx.cookies.set(COOKIE, null, { signed: true, httpOnly: true, sameSite: 'lax', secure: secureCookies, path: cookiePath });
  }

  async function accountOf(record: Pending): Promise<AccountRecord> {
    const account = await store.accounts.findById(record.accountId);
    if (!account) throw expired();
    return account;
  }

  const gate: SecondFactorGate = async (ctx, interaction, login, next) => {
    if (hasSecondFactorAmr(login.amr)) return next(ctx, interaction, login);
    const factors = check.factorsOf(ctx, login.account);
    const required = policyRequires(policy, login.account, interaction.params);
    if (!hasFactor(factors) && !required) return next(ctx, interaction, login);
    const { method, connection, amr } = login;
    log.info({ requestId: ctx.state.requestId, event: 'second_factor.asked', accountId: login.account.id, enrol: !hasFactor(factors) }, 'second factor asked at sign-in');
    await begin(ctx, {
      uid: interaction.uid,
      accountId: login.account.id,
      purpose: 'sign-in',
      login: { method, amr, ...(connection ? { connection } : {}) },
      ...(hasFactor(factors) ? {} : { enrolSecret: newTotpSecret() }),
    });
  };

  async function stepUp(ctx: Context, interaction: Interaction, account: AccountRecord, ticked: Set<string>): Promise<boolean> {
    if (policy.dangerousScopes === 'off') return false;
    const amr = interaction.session?.amr ?? [];
    if (hasSecondFactorAmr(amr)) return false;
    const factors = check.factorsOf(ctx, account);
    if (!hasFactor(factors) && policy.dangerousScopes === 'if-enrolled') return false;
    log.info({ requestId: ctx.state.requestId, event: 'second_factor.asked', accountId: account.id, enrol: !hasFactor(factors), stepUp: true }, 'second factor asked for a dangerous scope');
    await begin(ctx, {
      uid: interaction.uid,
      accountId: account.id,
      purpose: 'step-up',
      amr: [...amr],
      scopes: [...ticked],
      ...(hasFactor(factors) ? {} : { enrolSecret: newTotpSecret() }),
    });
    return true;
  }

  function routes(router: Router, { details, form, grantConsent, dangerousTicked }: StepHelpers) {
    /** The interaction, checked to be at the prompt the pending step is for. */
    async function load(ctx: Context) {
      const interaction = await details(ctx);
      const { key, record } = await current(ctx, interaction.uid);
      const prompt = record.purpose === 'sign-in' ? 'login' : 'consent';
      if (interaction.prompt.name !== prompt) throw expired();
      if (record.purpose === 'step-up' && interaction.session?.accountId !== record.accountId) throw expired();
      return { interaction, key, record, account: await accountOf(record) };
    }

    async function page(ctx: Context, interaction: Interaction, record: Pending, account: AccountRecord, state: Partial<SecondFactorPage> & Pick<SecondFactorPage, 'state'>, status = 200) {
      const client = await holder.provider.Client.find(String(interaction.params.client_id));
      if (!client) throw expired();
      if (typeof interaction.params.redirect_uri === 'string') allowFormAction(ctx, interaction.params.redirect_uri);
      render(
        ctx,
        'second-factor',
        {
          title: record.purpose === 'step-up' ? 'Confirm it is you' : 'Second step',
          reason: record.purpose,
          client: clientView(client, staticClientIds, interaction.params.redirect_uri),
          account: { username: account.username },
          csrf: csrf.issue(ctx, `interaction:${interaction.uid}`),
          abortAction: `${basePath}/interaction/${interaction.uid}/abort`,
          ...state,
        } as SecondFactorPage,
        status,
      );
    }

    async function ask(ctx: Context, interaction: Interaction, record: Pending, account: AccountRecord, error?: string, status = 200) {
      const action = pagePath(interaction.uid);
      if (record.enrolSecret) {
        const skipAction = record.purpose === 'step-up' ? { skipAction: `${action}/skip` } : {};
        return page(ctx, interaction, record, account, { state: 'enrol', action, ...skipAction, secret: record.enrolSecret, uri: totpUri(policy.totpIssuer, account.username, record.enrolSecret), ...(error ? { error } : {}) }, status);
      }
      const factors = check.factorsOf(ctx, account);
      const passkey = policy.passkeys && factors.passkeys.length > 0 ? { optionsAction: `${action}/passkey/options`, action: `${action}/passkey` } : undefined;
      const skipAction = record.purpose === 'step-up' ? { skipAction: `${action}/skip` } : {};
      return page(ctx, interaction, record, account, { state: 'verify', action, totp: factors.totp !== undefined, ...skipAction, ...(passkey ? { passkey } : {}), ...(error ? { error } : {}) }, status);
    }

    function tooMany(ctx: Context, refused: Refusal) {
      tooManyRequestsPage(ctx, render, refused.retryAfterMs, 'Too many attempts', `Too many wrong codes. Wait ${describeWait(refused.retryAfterMs)}, then try again: every attempt before then makes the wait longer.`);
    }

    /** The step passed: the pending record is used up, the login (and consent) finish. */
    async function passed(ctx: Context, interaction: Interaction, key: string, account: AccountRecord, kind: 'otp' | 'hwk') {
      const record = await pending.take(key);
      if (!record || record.uid !== interaction.uid) throw expired();
      forget(ctx);
      if (record.purpose === 'sign-in') {
        const login = record.login!;
        return complete(ctx, interaction as LoginInteraction, {
          account,
          method: login.method,
          ...(login.connection ? { connection: login.connection } : {}),
          amr: withSecondFactor(login.amr, kind),
        });
      }
      const amr = withSecondFactor(record.amr ?? [], kind);
      return grantConsent(ctx, interaction, new Set(record.scopes ?? []), { accountId: account.id, amr, acr: acrFor(amr) });
    }

    router.get('/:uid/second-factor', async (ctx) => {
      const { interaction, record, account } = await load(ctx);
      if (record.enrolled) throw expired();
      await ask(ctx, interaction, record, account);
    });

    router.post('/:uid/second-factor', async (ctx) => {
      const { interaction, key, record, account } = await load(ctx);
      const input = await form(ctx, codeForm, `interaction:${interaction.uid}`);
      if (record.enrolled) throw expired();
      if (record.enrolSecret) {
        const result = await check.enrolmentCode(ctx, account, record.enrolSecret, input.code, record.purpose);
        if ('refused' in result && result.refused) return tooMany(ctx, result.refused);
        if (!('step' in result)) return ask(ctx, interaction, record, account, 'That code is not right. Check the time on your device and enter the current code.', 401);
        const factors: SecondFactors = check.factorsOf(ctx, account);
        if (hasFactor(factors)) throw expired();
        const { codes, hashes } = newRecoveryCodes();
        await check.save(account, { ...factors, totp: { secret: record.enrolSecret, enrolledAt: Date.now(), lastUsedStep: result.step }, recoveryCodes: hashes });
        if (!(await pending.replace(key, { ...record, enrolSecret: undefined, enrolled: true } as Pending))) throw expired();
        log.info({ requestId: ctx.state.requestId, event: 'second_factor.enrolled', accountId: account.id, method: 'totp', context: record.purpose }, 'second factor enrolled');
        audit.record({ event: 'second_factor.enrolled', outcome: 'success', actor: account.id, ...requestFacts(ctx), details: { method: 'totp', context: record.purpose, issuedRecovery: codes.length } });
        return page(ctx, interaction, record, account, { state: 'recovery-codes', codes, continueAction: `${pagePath(interaction.uid)}/continue` });
      }
      const result = await check.code(ctx, account, input.code, record.purpose);
      if (result.ok) return passed(ctx, interaction, key, account, result.kind);
      if (result.refused) return tooMany(ctx, result.refused);
      return ask(ctx, interaction, record, account, 'That code is not right, or it was used already. Enter the current code, or one of your recovery codes.', 401);
    });

    router.post('/:uid/second-factor/continue', async (ctx) => {
      const { interaction, key, record, account } = await load(ctx);
      await form(ctx, csrfOnly, `interaction:${interaction.uid}`);
      if (!record.enrolled) throw expired();
      await passed(ctx, interaction, key, account, 'otp');
    });

    router.post('/:uid/second-factor/skip', async (ctx) => {
      const { interaction, key, record, account } = await load(ctx);
      await form(ctx, csrfOnly, `interaction:${interaction.uid}`);
      if (record.purpose !== 'step-up' || !(await pending.take(key))) throw expired();
      forget(ctx);
      const ticked = new Set(record.scopes ?? []);
      const dangerous = dangerousTicked(interaction, ticked);
      log.info({ requestId: ctx.state.requestId, event: 'second_factor.declined', accountId: account.id, scopes: dangerous }, 'step-up declined: dangerous scopes left out');
      for (const value of dangerous) ticked.delete(value);
      await grantConsent(ctx, interaction, ticked);
    });

    router.post('/:uid/second-factor/passkey/options', async (ctx) => {
      const { interaction, key, record, account } = await load(ctx);
      await form(ctx, csrfOnly, `interaction:${interaction.uid}`);
      const factors = check.factorsOf(ctx, account);
      if (!policy.passkeys || factors.passkeys.length === 0 || record.enrolSecret || record.enrolled) throw expired();
      const options = await rp.authenticationOptions(factors.passkeys);
      if (!(await pending.replace(key, { ...record, challenge: options.challenge }))) throw expired();
      ctx.set('Cache-Control', 'no-store');
      ctx.body = options;
    });

    router.post('/:uid/second-factor/passkey', async (ctx) => {
      const { interaction, key, record, account } = await load(ctx);
      const input = await form(ctx, passkeyForm, `interaction:${interaction.uid}`);
      if (!policy.passkeys || !record.challenge) throw expired();
      // the challenge is used once, whatever the answer
      if (!(await pending.replace(key, { ...record, challenge: undefined } as Pending))) throw expired();
      const credential = parseCredential(input.credential);
      const result = await check.passkey(ctx, account, credential ?? {}, record.challenge, record.purpose);
      if (result.ok) return passed(ctx, interaction, key, account, result.kind);
      if ('refused' in result && result.refused) return tooMany(ctx, result.refused);
      return ask(ctx, interaction, { ...record, challenge: undefined }, account, 'The passkey could not be checked. Try again, or enter a code instead.', 401);
    });
  }

  return { gate, stepUp, routes };
}
