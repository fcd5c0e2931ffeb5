/**
 * What the MCP client gets while a call waits for a person, or when no approval comes: answers
 * a client (or the model driving it) can act on, each keeping the request's JSON-RPC id.
 *
 * - pending, `'elicitation'`: JSON-RPC error -32042 (`UrlElicitationRequired`) with one URL
 *   elicitation: the approval page. The MCP SDK turns it into an `UrlElicitationRequiredError`.
 * - pending, `'denial'`: a tool result with `isError` whose text says what needs approval, where
 *   to approve and how to retry, and whose `_meta["dev.mcp-authz/authorization-denial"]` says
 *   the same for programs (in the spirit of MCP SEP-2643 structured authorization denials).
 * - denied / expired / unavailable: such a tool result in every mode (no URL would help).
 * - the authorization server unreachable: 503 with JSON-RPC error -32000; the tool does not run.
 */
import type { Challenge } from './challenge.js';

/** The `_meta` key a client echoes the approval id under when it retries (the context id). */
export const APPROVAL_ID_META = 'dev.mcp-authz/approval_id';
/** The `_meta` key of the structured denial in a tool result. */
export const DENIAL_META = 'dev.mcp-authz/authorization-denial';
/** JSON-RPC error code of a URL elicitation the client must complete first (MCP). */
export const URL_ELICITATION_REQUIRED = -32042;
/** JSON-RPC error code when the authorization server cannot be asked. */
export const APPROVAL_UNAVAILABLE = -32000;

/** Why a call that needs approval did not run. */
export type ApprovalClassification = 'approval_required' | 'approval_denied' | 'approval_expired' | 'approval_unavailable';

/** `_meta["dev.mcp-authz/authorization-denial"]` of a tool result answering a call that needs approval. */
export interface ApprovalDenial {
  classification: ApprovalClassification;
  status: 'pending' | 'denied' | 'expired' | 'unavailable';
  approval_id?: string;
  approval_url?: string;
  account_url?: string;
  /** seconds left to approve */
  expires_in?: number;
  /** seconds to wait between retries */
  interval?: number;
  /** how to retry: send `value` as `params._meta[meta_key]` with the same tool and arguments */
  retry?: { meta_key: string; value: string };
}

export type JsonRpcId = string | number | null;

/** The request's JSON-RPC id (null when it has none usable). */
export function jsonRpcId(message: unknown): JsonRpcId {
  const id = typeof message === 'object' && message !== null ? (message as { id?: unknown }).id : undefined;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

const json = (status: number, cors: Record<string, string>, body: unknown): Challenge => ({
  status,
  headers: { ...cors, 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
  body: JSON.stringify(body),
});

/** A JSON-RPC error answer. */
export function jsonRpcError(status: number, id: JsonRpcId, code: number, message: string, cors: Record<string, string>, data?: unknown): Challenge {
  return json(status, cors, { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } });
}

/** A tool result with `isError` carrying a structured denial. */
export function deniedToolResult(id: JsonRpcId, text: string, denial: ApprovalDenial, cors: Record<string, string>): Challenge {
  return json(200, cors, { jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }], isError: true, _meta: { [DENIAL_META]: denial } } });
}

export interface PendingApproval {
  tool: string;
  summary: string;
  approval_id: string;
  approval_url: string;
  account_url: string;
  expires_in: number;
  interval: number;
}

/** Pending, `'elicitation'` mode: -32042 with the approval page as a URL elicitation. */
export function elicitationAnswer(id: JsonRpcId, pending: PendingApproval, cors: Record<string, string>): Challenge {
  const elicitation = { mode: 'url', elicitationId: pending.approval_id, url: pending.approval_url, message: `Approve in your browser: ${pending.summary}` };
  return jsonRpcError(200, id, URL_ELICITATION_REQUIRED, `Calling ${pending.tool} needs a person's approval`, cors, { elicitations: [elicitation] });
}

/** Pending, `'denial'` mode: a tool result that says where to approve and how to retry. */
export function pendingDenial(id: JsonRpcId, pending: PendingApproval, cors: Record<string, string>): Challenge {
  const text = [
    `Calling ${pending.tool} needs a person's approval, which has not been given yet. What is to be approved: ${pending.summary}`,
    `The person can approve it at ${pending.approval_url} (or on the connected apps page, ${pending.account_url}) within ${pending.expires_in} seconds.`,
    `Once approved, call ${pending.tool} again with the same arguments and params._meta["${APPROVAL_ID_META}"] = ${JSON.stringify(pending.approval_id)}; wait at least ${pending.interval} seconds between retries.`,
  ].join('\n');
  return deniedToolResult(
    id,
    text,
    {
      classification: 'approval_required',
      status: 'pending',
      approval_id: pending.approval_id,
      approval_url: pending.approval_url,
      account_url: pending.account_url,
      expires_in: pending.expires_in,
      interval: pending.interval,
      retry: { meta_key: APPROVAL_ID_META, value: pending.approval_id },
    },
    cors,
  );
}

/** A person refused the call. */
export function refusedDenial(id: JsonRpcId, tool: string, approvalId: string, cors: Record<string, string>): Challenge {
  const text = `A person refused this call to ${tool}. It did not run; do not call it again with these arguments unless the person asks for it.`;
  return deniedToolResult(id, text, { classification: 'approval_denied', status: 'denied', approval_id: approvalId }, cors);
}

/** Nobody decided in time. */
export function expiredDenial(id: JsonRpcId, tool: string, approvalId: string, cors: Record<string, string>): Challenge {
  const text = `Nobody approved this call to ${tool} in time, so it did not run. Calling it again asks for approval again.`;
  return deniedToolResult(id, text, { classification: 'approval_expired', status: 'expired', approval_id: approvalId }, cors);
}

/** No person can approve for this access token (e.g. a client-credentials token). */
export function unavailableDenial(id: JsonRpcId, tool: string, description: string | undefined, cors: Record<string, string>): Challenge {
  const text = `Calling ${tool} needs a person's approval, and no person can give it for this connection${description ? ` (${description})` : ''}. It did not run.`;
  return deniedToolResult(id, text, { classification: 'approval_unavailable', status: 'unavailable' }, cors);
}

/** The authorization server cannot be asked: 503, -32000, the tool does not run. */
export function unreachableAnswer(id: JsonRpcId, cors: Record<string, string>): Challenge {
  const answer = jsonRpcError(503, id, APPROVAL_UNAVAILABLE, 'cannot reach the authorization server to approve this call', cors);
  return { ...answer, headers: { ...answer.headers, 'Retry-After': '5' } };
}
