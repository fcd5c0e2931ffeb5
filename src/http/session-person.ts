/**
 * The person this browser is signed in as: oidc-provider's browser session (its signed cookie
 * names a Session record in the store) and the account it belongs to. The account pages
 * (connected apps, sign-in security, tool-call approvals) read it the same way; undefined when
 * the browser has no session, the session ended or its account is gone.
 */
import type { Context } from 'koa';
import type { AccountRecord, Store } from '../../adapters/contract.js';
import { SESSION_COOKIE } from '../provider/session-guard.js';

export interface SessionPerson {
  /** the oidc-provider Session id (the cookie's value) */
  sessionId: string;
  /** the session's stable uid, which forms' CSRF tokens are bound to */
  uid: string;
  account: AccountRecord;
  /** how the session signed in (`pwd`, `otp`, `hwk`, `mfa`, …) */
  amr: string[];
  /** grant ids the session remembers per client */
  grantIds: string[];
}

interface StoredSession {
  accountId?: unknown;
  uid?: unknown;
  amr?: unknown;
  authorizations?: Record<string, { grantId?: unknown }>;
}

export async function sessionPerson(ctx: Context, store: Store): Promise<SessionPerson | undefined> {
  const sessionId = ctx.cookies.get(SESSION_COOKIE, { signed: true });
  if (!sessionId) return undefined;
  const session = (await store.model('Session').find(sessionId)) as StoredSession | undefined;
  if (!session || typeof session.accountId !== 'string' || typeof session.uid !== 'string') return undefined;
  const account = await store.accounts.findById(session.accountId);
  if (!account) return undefined;
  const amr = Array.isArray(session.amr) ? session.amr.filter((m): m is string => typeof m === 'string') : [];
  const grantIds = Object.values(session.authorizations ?? {}).flatMap((a) => (typeof a?.grantId === 'string' ? [a.grantId] : []));
  return { sessionId, uid: session.uid, account, amr, grantIds };
}
