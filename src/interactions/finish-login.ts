/**
 * The end of every primary sign-in — a local password, or a person vouched for by a
 * connection (src/interactions/connection-sign-in.ts): the audit record naming how and
 * through which connection, then the engine's login prompt finished with the methods used
 * (`amr`, RFC 8176), which reach the session and the tokens.
 */
import type { Context } from 'koa';
import type { AccountRecord } from '../../adapters/contract.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderHolder } from '../provider/holder.js';

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

export interface FinishLoginDeps {
  holder: ProviderHolder;
  audit: AuditLog;
  log: Logger;
}

export function loginFinisher({ holder, audit, log }: FinishLoginDeps): FinishLogin {
  return async (ctx, interaction, { account, method, connection, amr }) => {
    const client = typeof interaction.params.client_id === 'string' ? { client: interaction.params.client_id } : {};
    const via: Record<string, string> = connection ? { connection } : {};
    log.info({ requestId: ctx.state.requestId, event: 'login.succeeded', accountId: account.id, method, ...via }, 'signed in');
    audit.record({ event: 'login.succeeded', outcome: 'success', actor: account.id, ...client, ...requestFacts(ctx), details: { method, ...via } });
    const returnTo = await holder.provider.interactionResult(
      ctx.req,
      ctx.res,
      { login: { accountId: account.id, ...(amr.length ? { amr: [...new Set(amr)] } : {}) } },
      { mergeWithLastSubmission: false },
    );
    ctx.status = 303;
    ctx.redirect(returnTo);
  };
}
