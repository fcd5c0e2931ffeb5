/**
 * Tool-call approvals: what an MCP server is answered when it asks whether a call may run
 * (./endpoint.ts), and the person's decision (the approval page).
 *
 * An answer is found in this order:
 * 1. the record the call's `approval_id` names, when it is one of this grant's (or, without a
 *    person, this client's) for the same MCP server, tool and arguments digest and still
 *    open; any other id is ignored, as if none was sent;
 * 2. else the newest open record for the grant (or client), server, tool and digest;
 *    - approved: redeemed (once: of concurrent askers one wins, the others go on to 3) and
 *      answered with an approval token;
 *    - pending and in time: `pending`, the same record (retries never make another);
 *    - refused, or pending past its deadline: `denied` / `expired`, once (the one caller
 *      that closes the record; the others go on to 3), so the next call starts afresh;
 * 3. else the policy (./policy.ts): `never`, or `once_per_session` after the person approved
 *    this tool on this grant, approves at once (by policy); a token without a person is
 *    `unavailable` (nobody could approve); otherwise a new pending request for the person.
 *
 * Every step is audited (`approval.*`) with identifiers only: never a token, nor the summary.
 */
import { randomBytes } from 'node:crypto';
import { toolApprovalKey, type Store, type ToolApprovalRecord } from '../../adapters/contract.js';
import { hasFactor, readSecondFactors } from '../accounts/second-factors.js';
import type { AuditEvent, AuditLog } from '../audit/events.js';
import type { Config } from '../config/schema.js';
import { APPROVALS_PATH, CONNECTED_APPS_PATH } from '../http/account-paths.js';
import type { ProviderHolder } from '../provider/holder.js';
import type { AccessTokenClaims } from '../provider/own-access-tokens.js';
import { signApprovalToken } from './approval-token.js';
import { approvalPolicy, type ApprovalPolicy } from './policy.js';

/** One call an MCP server asks about, with the verified claims of the token it carried. */
export interface ApprovalQuestion {
  claims: AccessTokenClaims;
  /** the MCP server (canonical URI): the token's audience, one the asking client acts as */
  resource: string;
  /** the client id the MCP server authenticated as */
  askedBy: string;
  tool: string;
  argumentsDigest: string;
  summary: string;
  approvalId?: string | undefined;
}

export type ApprovalAnswer =
  | { status: 'approved'; approval_id: string; approval_token: string; expires_in: number }
  | { status: 'pending'; approval_id: string; approval_url: string; account_url: string; expires_in: number; interval: number }
  | { status: 'denied'; approval_id: string }
  | { status: 'expired'; approval_id: string }
  | { status: 'unavailable'; error_description: string };

/**
 * How a person's decision went: made, or not — no such request of theirs, no longer pending, or
 * an approval the policy wants confirmed with a fresh second factor (`secondFactor` false).
 */
export type DecisionOutcome = 'decided' | 'unknown' | 'not_pending' | 'second_factor_required';

/** What the audit record of a request adds about it (src/audit/request-facts.ts). */
type RequestFacts = Pick<AuditEvent, 'requestId' | 'source'>;

export interface ToolApprovalService {
  answer(question: ApprovalQuestion, facts?: RequestFacts): Promise<ApprovalAnswer>;
  /** The person `accountId` approves or refuses their pending request `id`. */
  decide(id: string, accountId: string, decision: 'approved' | 'denied', secondFactor: boolean, facts?: RequestFacts): Promise<DecisionOutcome>;
  /** The person's pending requests, newest first (at most 50). */
  pendingFor(accountId: string): Promise<ToolApprovalRecord[]>;
  /** The policy a request falls under (the page needs its `secondFactor`). */
  policyFor(record: ToolApprovalRecord): Promise<ApprovalPolicy>;
}

export interface ToolApprovalDeps {
  config: Pick<Config, 'issuer' | 'toolApprovals' | 'resources'>;
  store: Store;
  holder: ProviderHolder;
  audit: AuditLog;
  now?: () => number;
}

function newApprovalId(): string {
  return randomBytes(18).toString('base64url');
}

export function toolApprovalService(deps: ToolApprovalDeps): ToolApprovalService {
  const { config, store, holder, audit } = deps;
  const now = deps.now ?? Date.now;
  const approvals = store.toolApprovals;
  const { requestTtl, tokenTtl, pollInterval } = config.toolApprovals;

  function record(event: AuditEvent['event'], r: ToolApprovalRecord, actor: string, facts: RequestFacts, by?: 'person' | 'policy', secondFactor?: boolean): void {
    audit.record({
      event,
      outcome: event === 'approval.refused' || event === 'approval.expired' ? 'failure' : 'success',
      actor,
      client: r.clientId,
      resource: r.resource,
      ...facts,
      details: {
        approvalId: r.id,
        tool: r.tool,
        argumentsDigest: r.argumentsDigest,
        ...(r.grantId === undefined ? {} : { grantId: r.grantId }),
        // so `audit search --user` finds the person's approvals whoever acted
        ...(r.accountId === undefined ? {} : { accountId: r.accountId }),
        ...(by === undefined ? {} : { by }),
        ...(secondFactor === undefined ? {} : { secondFactor }),
      },
    });
  }

  async function rolesOf(accountId: string | undefined): Promise<string[]> {
    if (accountId === undefined) return [];
    return (await store.accounts.findById(accountId))?.roles ?? [];
  }

  async function policyFor(r: Pick<ToolApprovalRecord, 'resource' | 'tool' | 'clientId' | 'accountId'>): Promise<ApprovalPolicy> {
    return approvalPolicy(config, { resource: r.resource, tool: r.tool, clientId: r.clientId, roles: await rolesOf(r.accountId) });
  }

  async function approved(r: ToolApprovalRecord, q: ApprovalQuestion, at: number): Promise<ApprovalAnswer> {
    const token = await signApprovalToken(holder, { record: r, subject: q.claims.sub, issuer: config.issuer, ttl: tokenTtl, now: at });
    return { status: 'approved', approval_id: r.id, approval_token: token, expires_in: tokenTtl };
  }

  function pending(r: ToolApprovalRecord, at: number): ApprovalAnswer {
    return {
      status: 'pending',
      approval_id: r.id,
      approval_url: `${config.issuer}${APPROVALS_PATH}/${r.id}`,
      account_url: `${config.issuer}${CONNECTED_APPS_PATH}`,
      expires_in: Math.max(1, Math.ceil((r.expiresAt - at) / 1000)),
      interval: pollInterval,
    };
  }

  /** Steps 1 and 2: the open record this call continues, if any. */
  async function openRecord(q: ApprovalQuestion, key: string): Promise<ToolApprovalRecord | undefined> {
    if (q.approvalId !== undefined) {
      const named = await approvals.get(q.approvalId);
      const same =
        named &&
        toolApprovalKey(named) === key &&
        named.resource === q.resource &&
        named.tool === q.tool &&
        named.argumentsDigest === q.argumentsDigest &&
        (named.status === 'pending' || named.status === 'approved' || named.status === 'denied');
      if (same) return named;
    }
    return approvals.findOpen(key, q.resource, q.tool, q.argumentsDigest);
  }

  async function answer(q: ApprovalQuestion, facts: RequestFacts = {}): Promise<ApprovalAnswer> {
    const { claims } = q;
    const grantId = claims.grant_id;
    // a person stands behind a token with a grant (and its subject): src/provider/own-access-tokens.ts
    const accountId = grantId !== undefined && typeof claims.sub === 'string' ? claims.sub : undefined;
    const key = toolApprovalKey({ grantId, clientId: claims.client_id });
    const at = now();

    const open = await openRecord(q, key);
    if (open?.status === 'approved') {
      if (await approvals.redeem(open.id, at)) {
        record('approval.redeemed', open, q.askedBy, facts, open.decidedBy);
        return approved(open, q, at);
      }
      // another caller redeemed it first: this call needs an approval of its own
    } else if (open?.status === 'pending' && open.expiresAt > at) {
      return pending(open, at);
    } else if (open?.status === 'pending' || open?.status === 'denied') {
      if (await approvals.close(open.id)) {
        const status = open.status === 'denied' ? 'denied' : 'expired';
        if (status === 'expired') record('approval.expired', open, q.askedBy, facts);
        return { status, approval_id: open.id };
      }
      // a concurrent call answered it: this one starts afresh
    }

    const base = {
      resource: q.resource,
      tool: q.tool,
      argumentsDigest: q.argumentsDigest,
      summary: q.summary,
      clientId: claims.client_id,
      ...(grantId === undefined ? {} : { grantId }),
      ...(accountId === undefined ? {} : { accountId }),
      createdAt: at,
    };
    const policy = await policyFor({ ...base, accountId });
    const onceApproved = policy.ask === 'once_per_session' && grantId !== undefined && (await approvals.approvedBefore(grantId, q.resource, q.tool));
    if (policy.ask === 'never' || onceApproved) {
      const byPolicy: ToolApprovalRecord = { ...base, id: newApprovalId(), status: 'approved', decidedBy: 'policy', decidedAt: at, expiresAt: at };
      await approvals.create(byPolicy);
      record('approval.granted', byPolicy, q.askedBy, facts, 'policy');
      if (!(await approvals.redeem(byPolicy.id, at))) throw new Error('a tool approval made by policy could not be redeemed');
      record('approval.redeemed', byPolicy, q.askedBy, facts, 'policy');
      return approved(byPolicy, q, at);
    }
    if (accountId === undefined) {
      return { status: 'unavailable', error_description: 'this call needs the approval of a person, and the token was issued to the client alone' };
    }
    const request: ToolApprovalRecord = { ...base, id: newApprovalId(), status: 'pending', expiresAt: at + requestTtl * 1000 };
    await approvals.create(request);
    record('approval.requested', request, q.askedBy, facts);
    return pending(request, at);
  }

  /** Whether approving `r` needs a fresh second factor: by its policy, and whether the person has one. */
  async function needsSecondFactor(r: ToolApprovalRecord, accountId: string): Promise<boolean> {
    const { secondFactor } = await policyFor(r);
    if (secondFactor !== 'if_enrolled') return secondFactor === 'always';
    const account = await store.accounts.findById(accountId);
    if (!account) return true;
    const factors = readSecondFactors(account);
    // an unreadable record fails closed, as sign-in does
    return factors.state === 'broken' || hasFactor(factors.factors);
  }

  async function decide(id: string, accountId: string, decision: 'approved' | 'denied', secondFactor: boolean, facts: RequestFacts = {}): Promise<DecisionOutcome> {
    const r = await approvals.get(id);
    // someone else's request is as unknown as a missing one
    if (!r || r.accountId !== accountId) return 'unknown';
    // the page asks for the factor first; this holds even if a page forgot to
    if (decision === 'approved' && !secondFactor && (await needsSecondFactor(r, accountId))) return 'second_factor_required';
    const at = now();
    if (!(await approvals.decide(id, decision, { at, decidedBy: 'person', secondFactor }))) return 'not_pending';
    if (decision === 'approved') record('approval.granted', r, accountId, facts, 'person', secondFactor);
    else record('approval.refused', r, accountId, facts, 'person');
    return 'decided';
  }

  return {
    answer,
    decide,
    pendingFor: (accountId) => approvals.listPending(accountId, now()),
    policyFor,
  };
}
