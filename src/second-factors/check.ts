/**
 * Checking a second factor of an account: a TOTP code, a recovery code or a passkey's answer.
 * Every attempt is counted like a password (src/http/limits.ts `signIn`, under `2fa:<account id>`)
 * before it is looked at, audited as `second_factor.verified` or `second_factor.failed` (the
 * method, never the code), and what it uses up is written back: the TOTP time step (a code works
 * once), the recovery code (removed), the passkey's signature counter.
 */
import type { Context } from 'koa';
import type { AccountRecord, Store } from '../../adapters/contract.js';
import { readSecondFactors, writeSecondFactors, type SecondFactors } from '../accounts/second-factors.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';
import type { RateLimits, Refusal } from '../http/limits.js';
import { PageError } from '../http/page-error.js';
import type { Logger } from '../observability/logger.js';
import type { RelyingParty } from './passkeys.js';
import { matchRecoveryCode } from './recovery-codes.js';
import { checkTotp } from './totp.js';

/** Where the factor is asked for, as audit records say. */
export type CheckContext = 'sign-in' | 'step-up' | 'account' | 'approval';

export type CheckResult = { ok: true; kind: 'otp' | 'hwk' } | { ok: false; refused?: Refusal };

export interface FactorCheckDeps {
  store: Store;
  limits: RateLimits;
  audit: AuditLog;
  log: Logger;
  rp: RelyingParty;
}

/** The page shown when an account's second-factor record cannot be read. */
export function needsAttention(): PageError {
  return new PageError(
    409,
    'Your account needs attention',
    'Your second-factor settings cannot be read, so you cannot be signed in with them. Ask your administrator to reset your second factors, then sign in again.',
  );
}

export class FactorCheck {
  constructor(private readonly deps: FactorCheckDeps) {}

  /** The account's factors; a record that does not parse is logged and shown as {@link needsAttention}. */
  factorsOf(ctx: Context, account: AccountRecord): SecondFactors {
    const read = readSecondFactors(account);
    if (read.state === 'ok') return read.factors;
    this.deps.log.error({ requestId: ctx.state.requestId, event: 'second_factor.unreadable', accountId: account.id }, "the account's second-factor record does not parse");
    throw needsAttention();
  }

  async save(account: AccountRecord, factors: SecondFactors): Promise<void> {
    await this.deps.store.accounts.update(account.username, { secondFactors: writeSecondFactors(factors) });
  }

  /** A TOTP code or a recovery code typed by the person. */
  async code(ctx: Context, account: AccountRecord, input: string, where: CheckContext): Promise<CheckResult> {
    const factors = this.factorsOf(ctx, account);
    const attempt = await this.#attempt(ctx, account);
    if ('refused' in attempt) return { ok: false, refused: attempt.refused };
    if (factors.totp) {
      const step = await checkTotp(factors.totp.secret, input, factors.totp.lastUsedStep);
      if (step !== undefined) {
        await this.save(account, { ...factors, totp: { ...factors.totp, lastUsedStep: step } });
        return this.#passed(ctx, account, attempt, 'totp', where);
      }
    }
    const used = matchRecoveryCode(factors.recoveryCodes, input);
    if (used !== -1) {
      await this.save(account, { ...factors, recoveryCodes: factors.recoveryCodes.filter((_, i) => i !== used) });
      return this.#passed(ctx, account, attempt, 'recovery_code', where, { recoveryLeft: factors.recoveryCodes.length - 1 });
    }
    return this.#failed(ctx, account, where, factors.totp ? 'wrong_code' : 'no_totp');
  }

  /** A TOTP code for a secret being enrolled (not yet saved); the step it was for when right. */
  async enrolmentCode(ctx: Context, account: AccountRecord, secret: string, input: string, where: CheckContext): Promise<{ step: number } | { refused?: Refusal }> {
    const attempt = await this.#attempt(ctx, account);
    if ('refused' in attempt) return attempt;
    const step = await checkTotp(secret, input);
    if (step === undefined) {
      this.#failed(ctx, account, where, 'wrong_enrolment_code');
      return {};
    }
    await attempt.succeeded();
    return { step };
  }

  /** A passkey's answer to `challenge` (kept server-side by the caller). */
  async passkey(ctx: Context, account: AccountRecord, credential: unknown, challenge: string, where: CheckContext): Promise<CheckResult> {
    const factors = this.factorsOf(ctx, account);
    const attempt = await this.#attempt(ctx, account);
    if ('refused' in attempt) return { ok: false, refused: attempt.refused };
    const answered = await this.deps.rp.authenticate(credential, challenge, factors.passkeys);
    if (!answered) return this.#failed(ctx, account, where, 'passkey_not_verified');
    await this.save(account, { ...factors, passkeys: factors.passkeys.map((p) => (p.id === answered.id ? { ...p, counter: answered.counter } : p)) });
    return this.#passed(ctx, account, attempt, 'passkey', where);
  }

  async #attempt(ctx: Context, account: AccountRecord): Promise<{ refused: Refusal } | { succeeded(): Promise<void> }> {
    const attempt = await this.deps.limits.signIn(`2fa:${account.id}`, ctx.ip);
    if ('refused' in attempt) this.deps.limits.logHit(ctx, attempt.refused, { accountId: account.id });
    return attempt;
  }

  async #passed(ctx: Context, account: AccountRecord, attempt: { succeeded(): Promise<void> }, method: 'totp' | 'recovery_code' | 'passkey', where: CheckContext, extra: Record<string, number> = {}): Promise<CheckResult> {
    await attempt.succeeded();
    this.deps.log.info({ requestId: ctx.state.requestId, event: 'second_factor.verified', accountId: account.id, method, context: where }, 'second factor verified');
    this.deps.audit.record({ event: 'second_factor.verified', outcome: 'success', actor: account.id, ...requestFacts(ctx), details: { method, context: where, ...extra } });
    return { ok: true, kind: method === 'passkey' ? 'hwk' : 'otp' };
  }

  #failed(ctx: Context, account: AccountRecord, where: CheckContext, reason: string): { ok: false } {
    this.deps.log.info({ requestId: ctx.state.requestId, event: 'second_factor.failed', accountId: account.id, reason, context: where }, 'second factor refused');
    this.deps.audit.record({ event: 'second_factor.failed', outcome: 'failure', actor: account.id, ...requestFacts(ctx), details: { reason, context: where } });
    return { ok: false };
  }
}
