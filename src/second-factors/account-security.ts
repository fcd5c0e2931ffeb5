/**
 * The account's second factors, for the person signed in in this browser (oidc-provider's
 * session, read from the store as src/interactions/connected-apps.ts does):
 *
 *   GET  /account/security                          → what is enrolled, and the forms
 *   POST /account/security/verify                   → a code (TOTP or recovery) proves the second factor for this session
 *   POST /account/security/verify/passkey/options   → WebAuthn request options (JSON)
 *   POST /account/security/verify/passkey           → a passkey proves it
 *   GET  /account/security/totp                     → a new TOTP secret (text and otpauth:// URI)
 *   POST /account/security/totp                     → its first code saves it (and makes recovery codes if there are none)
 *   POST /account/security/totp/remove              → removes the authenticator app
 *   POST /account/security/recovery-codes           → ten new recovery codes, shown once (the old ones stop working)
 *   POST /account/security/passkeys/options         → WebAuthn creation options (JSON)
 *   POST /account/security/passkeys                 → saves the new passkey
 *   POST /account/security/passkeys/remove          → removes one
 *
 * Adding a first factor needs only the sign-in. Changing anything once a factor exists needs a
 * fresh second factor: a session signed in with one, or a verification here in the last ten
 * minutes. Forms carry a CSRF token bound to the session; attempts count against the sign-in
 * limits; every change is audited (`second_factor.enrolled`, `second_factor.removed`).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Store } from '../../adapters/contract.js';
import { hasFactor, type SecondFactors } from '../accounts/second-factors.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';
import type { Config } from '../config/schema.js';
import type { Csrf } from '../http/csrf.js';
import { ACCOUNT_SECURITY_PATH, CONNECTED_APPS_PATH, signInHref } from '../http/account-paths.js';
import { readCheckedForm } from '../http/checked-form.js';
import { describeWait, tooManyRequestsPage, type Refusal } from '../http/limits.js';
import { PageError } from '../http/page-error.js';
import { moment, type AccountSecurityPage, type Render } from '../http/render.js';
import type { Logger } from '../observability/logger.js';
import { sessionPerson, type SessionPerson } from '../http/session-person.js';
import type { FactorCheck } from './check.js';
import { parseCredential, type RelyingParty } from './passkeys.js';
import { hasSecondFactorAmr } from './policy.js';
import { newRecoveryCodes } from './recovery-codes.js';
import { SingleUseRecords } from '../../adapters/single-use-records.js';
import { newTotpSecret, totpUri } from './totp.js';

export { ACCOUNT_SECURITY_PATH };

export interface AccountSecurityDeps {
  config: Config;
  store: Store;
  csrf: Csrf;
  log: Logger;
  audit: AuditLog;
  render: Render;
  basePath: string;
  check: FactorCheck;
  rp: RelyingParty;
}

/** the session's uid binds CSRF tokens and pending records (src/http/session-person.ts) */
type SignedIn = SessionPerson;

/** How long a verification on this page lets the session change factors. */
const FRESH_SECONDS = 600;

const csrfOnly = z.object({ csrf: z.string().max(200) });
const codeForm = z.object({ csrf: z.string().max(200), code: z.string().max(64) });
const credentialForm = z.object({ csrf: z.string().max(200), credential: z.string().max(16_384), name: z.string().max(64).optional() });
const passkeyForm = z.object({ csrf: z.string().max(200), passkey: z.string().min(1).max(1024) });

const NOTICES: Record<string, string> = {
  verified: 'Verified: you can change your second factors for the next ten minutes.',
  totp: 'Your authenticator app is set up.',
  'totp-removed': 'Your authenticator app was removed.',
  passkey: 'Your passkey was added.',
  'passkey-removed': 'The passkey was removed.',
};

export function accountSecurityRouter(deps: AccountSecurityDeps): Router {
  const { config, store, csrf, log, audit, basePath, check, rp } = deps;
  const base = `${basePath}${ACCOUNT_SECURITY_PATH}`;
  const router = new Router();
  const fresh = new SingleUseRecords<{ accountId: string }>(store, 'SecondFactorFresh', FRESH_SECONDS);
  const enrolments = new SingleUseRecords<{ accountId: string; secret: string }>(store, 'SecondFactorEnrolment', 600);
  const challenges = new SingleUseRecords<{ accountId: string; challenge: string }>(store, 'PasskeyChallenge', 300);

  const render = (ctx: Context, page: AccountSecurityPage, status = 200) => deps.render(ctx, 'account-security', page, status);
  const notSignedIn = (ctx: Context) => render(ctx, { title: 'Sign-in security', state: 'not-signed-in', signInHref: signInHref(basePath, base) }, 401);

  async function signedIn(ctx: Context): Promise<SignedIn | undefined> {
    return sessionPerson(ctx, store);
  }

  const purpose = (who: SignedIn) => `account-security:${who.uid}`;

  async function form<T extends z.ZodTypeAny>(ctx: Context, who: SignedIn, schema: T): Promise<z.infer<T>> {
    return readCheckedForm(ctx, csrf, purpose(who), schema);
  }

  /** The signed-in person and their factors, or the 401 page (undefined). */
  async function who(ctx: Context): Promise<{ who: SignedIn; factors: SecondFactors } | undefined> {
    const found = await signedIn(ctx);
    if (!found) {
      notSignedIn(ctx);
      return undefined;
    }
    return { who: found, factors: check.factorsOf(ctx, found.account) };
  }

  async function isFresh(who: SignedIn): Promise<boolean> {
    if (hasSecondFactorAmr(who.amr)) return true;
    return (await fresh.peek(`${who.uid}`))?.accountId === who.account.id;
  }

  /** Changing factors once one exists needs a fresh second factor. */
  async function mayChange(who: SignedIn, factors: SecondFactors): Promise<boolean> {
    return !hasFactor(factors) || (await isFresh(who));
  }

  const needFresh = () =>
    new PageError(403, 'Verify first', 'To change your second factors, first confirm it is you with your current second factor on the sign-in security page.');

  async function overview(ctx: Context, who: SignedIn, factors: SecondFactors, extra: { notice?: string; error?: string } = {}, status = 200) {
    render(
      ctx,
      {
        title: 'Sign-in security',
        state: 'overview',
        account: { username: who.account.username },
        csrf: csrf.issue(ctx, purpose(who)),
        fresh: await isFresh(who),
        ...(factors.totp ? { totp: { enrolledAt: moment(factors.totp.enrolledAt) } } : {}),
        passkeys: factors.passkeys.map((p) => ({ id: p.id, name: p.name, createdAt: moment(p.createdAt) })),
        recoveryCodesLeft: factors.recoveryCodes.length,
        passkeysOffered: config.secondFactor.passkeys,
        actions: {
          totpSetup: `${base}/totp`,
          totpRemove: `${base}/totp/remove`,
          recoveryCodes: `${base}/recovery-codes`,
          passkeyOptions: `${base}/passkeys/options`,
          passkeyAdd: `${base}/passkeys`,
          passkeyRemove: `${base}/passkeys/remove`,
          verify: `${base}/verify`,
          verifyPasskeyOptions: `${base}/verify/passkey/options`,
          verifyPasskey: `${base}/verify/passkey`,
        },
        appsHref: `${basePath}${CONNECTED_APPS_PATH}`,
        ...extra,
      },
      status,
    );
  }

  function tooMany(ctx: Context, refused: Refusal) {
    tooManyRequestsPage(ctx, deps.render, refused.retryAfterMs, 'Too many attempts', `Too many wrong codes. Wait ${describeWait(refused.retryAfterMs)}, then try again.`);
  }

  function done(ctx: Context, notice: string) {
    ctx.status = 303;
    ctx.redirect(`${base}?done=${notice}`);
  }

  function changed(ctx: Context, who: SignedIn, event: 'second_factor.enrolled' | 'second_factor.removed', method: string) {
    log.info({ requestId: ctx.state.requestId, event, accountId: who.account.id, method, context: 'account' }, event === 'second_factor.enrolled' ? 'second factor enrolled' : 'second factor removed');
    audit.record({ event, outcome: 'success', actor: who.account.id, ...requestFacts(ctx), details: { method, context: 'account' } });
  }

  /** Shows new recovery codes once (after the first factor, or on request). */
  async function showRecoveryCodes(ctx: Context, who: SignedIn, factors: SecondFactors) {
    const { codes, hashes } = newRecoveryCodes();
    await check.save(who.account, { ...factors, recoveryCodes: hashes });
    changed(ctx, who, 'second_factor.enrolled', 'recovery_codes');
    render(ctx, { title: 'Your recovery codes', state: 'recovery-codes', account: { username: who.account.username }, codes, backHref: base });
  }

  router.get(base, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    const notice = typeof ctx.query.done === 'string' ? NOTICES[ctx.query.done] : undefined;
    await overview(ctx, found.who, found.factors, notice ? { notice } : {});
  });

  router.post(`${base}/verify`, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    const input = await form(ctx, found.who, codeForm);
    const result = await check.code(ctx, found.who.account, input.code, 'account');
    if (result.ok) {
      await fresh.put(found.who.uid, { accountId: found.who.account.id });
      return done(ctx, 'verified');
    }
    if (result.refused) return tooMany(ctx, result.refused);
    await overview(ctx, found.who, check.factorsOf(ctx, found.who.account), { error: 'That code is not right, or it was used already.' }, 401);
  });

  router.post(`${base}/verify/passkey/options`, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    await form(ctx, found.who, csrfOnly);
    if (!config.secondFactor.passkeys || found.factors.passkeys.length === 0) throw new PageError(404, 'Not found', 'There is no passkey to use.');
    const options = await rp.authenticationOptions(found.factors.passkeys);
    await challenges.put(`auth:${found.who.uid}`, { accountId: found.who.account.id, challenge: options.challenge });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = options;
  });

  router.post(`${base}/verify/passkey`, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    const input = await form(ctx, found.who, credentialForm);
    const kept = await challenges.take(`auth:${found.who.uid}`);
    if (!kept || kept.accountId !== found.who.account.id) throw new PageError(400, 'Expired', 'This request has expired. Go back, reload the page and try again.');
    const result = await check.passkey(ctx, found.who.account, parseCredential(input.credential) ?? {}, kept.challenge, 'account');
    if (result.ok) {
      await fresh.put(found.who.uid, { accountId: found.who.account.id });
      return done(ctx, 'verified');
    }
    if (result.refused) return tooMany(ctx, result.refused);
    await overview(ctx, found.who, check.factorsOf(ctx, found.who.account), { error: 'The passkey could not be checked.' }, 401);
  });

  router.get(`${base}/totp`, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    if (!(await mayChange(found.who, found.factors))) throw needFresh();
    const secret = newTotpSecret();
    await enrolments.put(`totp:${found.who.uid}`, { accountId: found.who.account.id, secret });
    render(ctx, {
      title: 'Set up an authenticator app',
      state: 'totp-setup',
      account: { username: found.who.account.username },
      csrf: csrf.issue(ctx, purpose(found.who)),
      action: `${base}/totp`,
      secret,
      uri: totpUri(config.secondFactor.totpIssuer, found.who.account.username, secret),
      backHref: base,
    });
  });

  router.post(`${base}/totp`, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    const input = await form(ctx, found.who, codeForm);
    if (!(await mayChange(found.who, found.factors))) throw needFresh();
    const key = `totp:${found.who.uid}`;
    const pending = await enrolments.peek(key);
    if (!pending || pending.accountId !== found.who.account.id) throw new PageError(400, 'Expired', 'This set-up has expired. Start again from the sign-in security page.');
    const result = await check.enrolmentCode(ctx, found.who.account, pending.secret, input.code, 'account');
    if ('refused' in result && result.refused) return tooMany(ctx, result.refused);
    if (!('step' in result)) {
      return render(
        ctx,
        {
          title: 'Set up an authenticator app',
          state: 'totp-setup',
          account: { username: found.who.account.username },
          csrf: csrf.issue(ctx, purpose(found.who)),
          action: `${base}/totp`,
          secret: pending.secret,
          uri: totpUri(config.secondFactor.totpIssuer, found.who.account.username, pending.secret),
          backHref: base,
          error: 'That code is not right. Check the time on your device and enter the current code.',
        },
        401,
      );
    }
    if (!(await enrolments.take(key))) throw new PageError(400, 'Expired', 'This set-up has expired. Start again from the sign-in security page.');
    const factors: SecondFactors = { ...found.factors, totp: { secret: pending.secret, enrolledAt: Date.now(), lastUsedStep: result.step } };
    await check.save(found.who.account, factors);
    changed(ctx, found.who, 'second_factor.enrolled', 'totp');
    // the authenticator just proved itself: this session may go on changing factors
    await fresh.put(found.who.uid, { accountId: found.who.account.id });
    if (factors.recoveryCodes.length === 0) return showRecoveryCodes(ctx, found.who, factors);
    done(ctx, 'totp');
  });

  router.post(`${base}/totp/remove`, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    await form(ctx, found.who, csrfOnly);
    if (!(await isFresh(found.who))) throw needFresh();
    if (!found.factors.totp) return done(ctx, 'totp-removed');
    const { totp: _removed, ...rest } = found.factors;
    // recovery codes stand in for a factor: with none left, they go too
    const left: SecondFactors = hasFactor(rest as SecondFactors) ? (rest as SecondFactors) : { ...rest, recoveryCodes: [] };
    await check.save(found.who.account, left);
    changed(ctx, found.who, 'second_factor.removed', 'totp');
    done(ctx, 'totp-removed');
  });

  router.post(`${base}/recovery-codes`, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    await form(ctx, found.who, csrfOnly);
    if (!hasFactor(found.factors)) throw new PageError(400, 'No second factor', 'Set up an authenticator app or a passkey first: recovery codes stand in for one.');
    if (!(await isFresh(found.who))) throw needFresh();
    await showRecoveryCodes(ctx, found.who, found.factors);
  });

  router.post(`${base}/passkeys/options`, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    await form(ctx, found.who, csrfOnly);
    if (!config.secondFactor.passkeys) throw new PageError(404, 'Not found', 'Passkeys are not offered here.');
    if (!(await mayChange(found.who, found.factors))) throw needFresh();
    const options = await rp.registrationOptions({ id: found.who.account.id, username: found.who.account.username }, found.factors.passkeys);
    await challenges.put(`reg:${found.who.uid}`, { accountId: found.who.account.id, challenge: options.challenge });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = options;
  });

  router.post(`${base}/passkeys`, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    const input = await form(ctx, found.who, credentialForm);
    if (!config.secondFactor.passkeys) throw new PageError(404, 'Not found', 'Passkeys are not offered here.');
    if (!(await mayChange(found.who, found.factors))) throw needFresh();
    const kept = await challenges.take(`reg:${found.who.uid}`);
    if (!kept || kept.accountId !== found.who.account.id) throw new PageError(400, 'Expired', 'This request has expired. Go back, reload the page and try again.');
    const name = (input.name ?? '').trim().slice(0, 64) || `Passkey added ${new Date().toISOString().slice(0, 10)}`;
    const passkey = await rp.register(parseCredential(input.credential), kept.challenge, name);
    if (!passkey) {
      log.info({ requestId: ctx.state.requestId, event: 'second_factor.failed', accountId: found.who.account.id, reason: 'passkey_registration_not_verified' }, 'passkey registration refused');
      audit.record({ event: 'second_factor.failed', outcome: 'failure', actor: found.who.account.id, ...requestFacts(ctx), details: { reason: 'passkey_registration_not_verified', context: 'account' } });
      return overview(ctx, found.who, found.factors, { error: 'The passkey could not be added. Try again.' }, 400);
    }
    if (found.factors.passkeys.some((p) => p.id === passkey.id) || found.factors.passkeys.length >= 20) {
      return overview(ctx, found.who, found.factors, { error: 'That passkey is already added, or there are too many.' }, 400);
    }
    const factors: SecondFactors = { ...found.factors, passkeys: [...found.factors.passkeys, passkey] };
    await check.save(found.who.account, factors);
    changed(ctx, found.who, 'second_factor.enrolled', 'passkey');
    await fresh.put(found.who.uid, { accountId: found.who.account.id });
    if (factors.recoveryCodes.length === 0) return showRecoveryCodes(ctx, found.who, factors);
    done(ctx, 'passkey');
  });

  router.post(`${base}/passkeys/remove`, async (ctx) => {
    const found = await who(ctx);
    if (!found) return;
    const input = await form(ctx, found.who, passkeyForm);
    if (!(await isFresh(found.who))) throw needFresh();
    const passkeys = found.factors.passkeys.filter((p) => p.id !== input.passkey);
    if (passkeys.length === found.factors.passkeys.length) throw new PageError(404, 'Not found', 'That passkey is not on your account (any more). Go back and reload the page.');
    const rest: SecondFactors = { ...found.factors, passkeys };
    await check.save(found.who.account, hasFactor(rest) ? rest : { ...rest, recoveryCodes: [] });
    changed(ctx, found.who, 'second_factor.removed', 'passkey');
    done(ctx, 'passkey-removed');
  });

  return router;
}
