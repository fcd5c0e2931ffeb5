/**
 * A refused SAML answer: the person gets a readable page saying only that the sign-in
 * failed; the log gets the reason and node-saml's message, the audit log a `login.failed`
 * record naming the connection and the reason. The assertion itself is never logged.
 */
import type { Context } from 'koa';
import { requestFacts } from '../../audit/request-facts.js';
import type { SamlConnectionConfig } from '../../config/sign-in.js';
import { PageError } from '../../http/page-error.js';
import type { DriverContext } from '../registry.js';

/** A short reason for the audit record, from what node-saml threw. */
export function reasonOf(err: unknown): string {
  const name = (err as Error)?.name;
  const message = String((err as Error)?.message ?? '');
  if (name === 'SamlStatusError') return 'saml_idp_refused';
  if (/InResponseTo/i.test(message)) return 'saml_unsolicited';
  if (/signature/i.test(message)) return 'saml_invalid_signature';
  if (/expired|not yet valid|too old|No valid subject confirmation/i.test(message)) return 'saml_expired';
  if (/audience/i.test(message)) return 'saml_wrong_audience';
  return 'saml_invalid_response';
}

export interface Refusal {
  reason: string;
  /** for the log only */
  detail: string;
  /** the client the sign-in was for, when known */
  client?: string | undefined;
  status?: number;
  title?: string;
  message?: string;
}

export function refuse(context: DriverContext, connection: SamlConnectionConfig, ctx: Context, refusal: Refusal): PageError {
  const { reason, client } = refusal;
  context.log.info(
    { requestId: ctx.state.requestId, event: 'login.failed', connection: connection.id, reason, detail: refusal.detail.slice(0, 200) },
    'a SAML answer was refused',
  );
  context.audit.record({
    event: 'login.failed',
    outcome: 'failure',
    ...(client ? { client } : {}),
    ...requestFacts(ctx),
    details: { reason, connection: connection.id, method: 'saml' },
  });
  return new PageError(
    refusal.status ?? 400,
    refusal.title ?? `Sign-in with ${connection.name} failed`,
    refusal.message ?? `${connection.name} did not confirm who you are. Go back to the app and try again.`,
  );
}
