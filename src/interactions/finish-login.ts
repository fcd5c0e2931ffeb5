/**
 * The end of every primary sign-in — a local password, or a person vouched for by a
 * connection (src/interactions/connection-sign-in.ts): the audit record naming how and
 * through which connection, then the engine's login prompt finished with the methods used
 * (`amr`, RFC 8176) and the `acr` they amount to (src/second-factors/policy.ts), which reach
 * the session and the tokens. A second-factor step (src/second-factors/sign-in-step.ts) may come
 * in between: it takes over when the account has a factor or policy requires one, and completes
 * the login itself once the factor is checked.
 */
import type { Context } from 'koa';
import type { AccountRecord } from '../../adapters/contract.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderHolder } from '../provider/holder.js';
import { acrFor } from '../second-factors/policy.js';

export interface PrimaryLogin {
  account: AccountRecord;
  /** `password` (a local account), or the connection kind */
  method: 'password' | 'oidc' | 'saml' | 'ldap';
  /** the connection id, when not a local password */
  connection?: string;
  /** authentication methods used (RFC 8176 `amr`) */
  amr: string[];
}

/** The interaction being finished, as `interactionDetails` returned it. */
export interface LoginInteraction {
  uid: string;
  params: Record<string, unknown>;
}

export type FinishLogin = (ctx: Context, interaction: LoginInteraction, login: PrimaryLogin) => Promise<void>;

/** Between the first factor and the end of the login: may answer itself (a second-factor page) instead of calling `complete`. */
export type SecondFactorGate = (ctx: Context, interaction: LoginInteraction, login: PrimaryLogin, complete: FinishLogin) => Promise<void>;

export interface FinishLoginDeps {
  holder: ProviderHolder;
  audit: AuditLog;
  log: Logger;
  secondFactor?: SecondFactorGate;
}

/** Ends the login prompt: the audit record, then the engine's result with `amr` and `acr`. */
export function loginCompleter({ holder, audit, log }: Omit<FinishLoginDeps, 'secondFactor'>): FinishLogin {
  return async (ctx, interaction, { account, method, connection, amr }) => {
    const client = typeof interaction.params.client_id === 'string' ? { client: interaction.params.client_id } : {};
    const via: Record<string, string> = connection ? { connection } : {};
    const methods = [...new Set(amr)];
    const acr = acrFor(methods);
    log.info({ requestId: ctx.state.requestId, event: 'login.succeeded', accountId: account.id, method, acr, ...via }, 'signed in');
    audit.record({ event: 'login.succeeded', outcome: 'success', actor: account.id, ...client, ...requestFacts(ctx), details: { method, amr: methods, ...via } });
    const returnTo = await holder.provider.interactionResult(
      ctx.req,
      ctx.res,
      { login: { accountId: account.id, acr, ...(methods.length ? { amr: methods } : {}) } },
      { mergeWithLastSubmission: false },
    );
    ctx.status = 303;
    ctx.redirect(returnTo);
  };
}

export function loginFinisher(deps: FinishLoginDeps): FinishLogin {
  const complete = loginCompleter(deps);
  const { secondFactor } = deps;
  return secondFactor ? (ctx, interaction, login) => secondFactor(ctx, interaction, login, complete) : complete;
}
