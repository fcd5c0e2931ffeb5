/**
 * Per-call approval of declared tools (issue #15). The adapters' guard, after the token and
 * scope checks, hands a `tools/call` of a tool listed in `toolApprovals` here: the arguments
 * digest and a summary (sensitive values taken out) go to the authorization server's
 * `/tool-approvals`; the call proceeds only with a verified approval token for exactly this
 * call, and otherwise the client gets an answer it can act on (src/verifier/approval-answers.ts).
 */
import {
  APPROVAL_ID_META,
  elicitationAnswer,
  expiredDenial,
  jsonRpcError,
  jsonRpcId,
  pendingDenial,
  refusedDenial,
  unavailableDenial,
  unreachableAnswer,
} from './approval-answers.js';
import { ApprovalRequestError, type ApprovalClient } from './approval-client.js';
import { ApprovalTokenError, verifyApprovalToken, type ApprovalTokenCheck } from './approval-token.js';
import type { Challenge } from './challenge.js';
import { VerifierError, isVerifierError } from './errors.js';
import { argumentsDigest, argumentsOf, withoutSensitiveValues, type ToolArguments } from './tool-arguments.js';
import type { AuthInfo, Verifier } from './types.js';

/** How a tool that needs a person's approval is declared (adapter option `toolApprovals`). */
export interface ToolApproval {
  /**
   * What the person is asked to approve, in a sentence (at most 300 characters are sent), e.g.
   * `Send ${args.amount} EUR to ${args.iban}`. Values of `sensitive` arguments are taken out
   * even when quoted. Throwing refuses the call (JSON-RPC error -32603).
   */
  summary(args: ToolArguments, auth: AuthInfo): string | Promise<string>;
  /** top-level argument names whose values are never stored, logged or sent in clear */
  sensitive?: readonly string[];
}

/** Tools that need a person's approval for each call, by tool name. */
export type ToolApprovals = Readonly<Record<string, ToolApproval>>;

/**
 * How a client is told a call waits for approval: `'elicitation'` (JSON-RPC error -32042 with a
 * URL elicitation, for clients that support URL elicitation), `'denial'` (a tool result with
 * `isError` and a structured denial the model can read), `'auto'` (default): elicitation when
 * the request's `params._meta["io.modelcontextprotocol/clientCapabilities"]` declares
 * `elicitation.url`, else denial.
 */
export type ApprovalAnswerMode = 'auto' | 'elicitation' | 'denial';

/** The approval of a call that proceeds, on `auth.extra.approval`. */
export type { ToolCallApproval } from './approval-token.js';

/** Longest summary sent to the authorization server. */
export const MAX_SUMMARY = 300;
/** Longest context id (`params._meta["dev.mcp-authz/approval_id"]`) sent on. */
export const MAX_APPROVAL_ID = 200;
const CLIENT_CAPABILITIES_META = 'io.modelcontextprotocol/clientCapabilities';

/** What `createVerifier` sets up for approvals when given `resourceServer` (internal). */
export interface ApprovalService {
  client: ApprovalClient;
  token: ApprovalTokenCheck;
  report: (error: Error) => void;
}

const services = new WeakMap<object, ApprovalService>();

/** Attaches the approval service to a verifier made by `createVerifier` (internal). */
export function attachApprovals(verifier: Verifier, service: ApprovalService): void {
  services.set(verifier, service);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The declared tool a JSON-RPC message calls, if any. */
function declaredCall(message: unknown, approvals: ToolApprovals): { name: string; params: Record<string, unknown> } | undefined {
  if (!isRecord(message) || message.method !== 'tools/call' || !isRecord(message.params)) return undefined;
  const name = message.params.name;
  return typeof name === 'string' && Object.hasOwn(approvals, name) ? { name, params: message.params } : undefined;
}

/** Whether the request declares URL elicitation support in its per-request client capabilities. */
export function declaresUrlElicitation(params: Record<string, unknown>): boolean {
  const meta = params._meta;
  const capabilities = isRecord(meta) ? meta[CLIENT_CAPABILITIES_META] : undefined;
  const elicitation = isRecord(capabilities) ? capabilities.elicitation : undefined;
  return isRecord(elicitation) && isRecord(elicitation.url);
}

/** The context id a retrying client echoes, when well-formed. */
function contextId(params: Record<string, unknown>): string | undefined {
  const meta = params._meta;
  const value = isRecord(meta) ? meta[APPROVAL_ID_META] : undefined;
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_APPROVAL_ID ? value : undefined;
}

const cut = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

export interface ApprovalStepOptions {
  toolApprovals?: ToolApprovals | undefined;
  approvalAnswer?: ApprovalAnswerMode | undefined;
  scopesFrom?: 'body' | 'headers' | undefined;
}

export type ApprovalOutcome = { auth: AuthInfo } | { answer: Challenge };

/**
 * The approval step of an adapter; undefined when no tool needs approval. Throws a TypeError
 * (at adapter creation) for declarations it cannot honour.
 */
export function createApprovalStep(verifier: Verifier, options: ApprovalStepOptions) {
  const approvals = options.toolApprovals ?? {};
  if (!isRecord(approvals)) throw new TypeError('toolApprovals must be an object of tool name → { summary, sensitive? }');
  const names = Object.keys(approvals);
  if (names.length === 0) return undefined;
  for (const name of names) {
    const declaration = approvals[name] as Partial<ToolApproval> | undefined;
    if (!declaration || typeof declaration.summary !== 'function') throw new TypeError(`toolApprovals["${name}"].summary must be a function`);
    const sensitive = declaration.sensitive;
    if (sensitive !== undefined && (!Array.isArray(sensitive) || !sensitive.every((entry) => typeof entry === 'string'))) {
      throw new TypeError(`toolApprovals["${name}"].sensitive must be an array of argument names`);
    }
  }
  const mode = options.approvalAnswer ?? 'auto';
  if (mode !== 'auto' && mode !== 'elicitation' && mode !== 'denial') throw new TypeError("approvalAnswer must be 'auto', 'elicitation' or 'denial'");
  if (options.scopesFrom === 'headers') throw new TypeError("toolApprovals needs the request body (the call's arguments); it cannot be combined with scopesFrom: 'headers'");
  const service = services.get(verifier);
  if (!service) {
    throw new TypeError(
      'toolApprovals needs the verifier option resourceServer: { clientId, clientSecret } (this MCP server\'s credentials as one of its resource\'s resourceServerClients at the authorization server)',
    );
  }

  return {
    async check(body: unknown, auth: AuthInfo, cors: Record<string, string>, refuse: (err: VerifierError) => Challenge): Promise<ApprovalOutcome> {
      if (Array.isArray(body)) {
        if (body.some((message) => declaredCall(message, approvals))) {
          return { answer: jsonRpcError(400, null, -32600, 'tools that need approval cannot be called in a batch', cors) };
        }
        return { auth };
      }
      const call = declaredCall(body, approvals);
      if (!call) return { auth };
      const id = jsonRpcId(body);
      const { name: tool, params } = call;
      const declaration = approvals[tool]!;
      const args = argumentsOf(params);
      if (!args) return { answer: jsonRpcError(200, id, -32602, `Invalid params: the arguments of ${tool} must be an object`, cors) };
      const sensitive = declaration.sensitive ?? [];

      let summary: string;
      try {
        const said = await declaration.summary(args, auth);
        if (typeof said !== 'string') throw new TypeError(`the summary of ${tool} is not a string`);
        summary = cut(withoutSensitiveValues(said, args, sensitive).trim(), MAX_SUMMARY) || `Call ${cut(tool, 100)}`;
      } catch (err) {
        service.report(new Error(`toolApprovals["${tool}"].summary failed: ${err instanceof Error ? err.message : String(err)}`));
        return { answer: jsonRpcError(200, id, -32603, `Internal error: could not describe this call to ${tool} for approval`, cors) };
      }

      const digest = await argumentsDigest(args);
      const approvalId = contextId(params);
      let answer;
      try {
        answer = await service.client.request({
          token: auth.token,
          tool,
          arguments_digest: digest,
          summary,
          ...(approvalId === undefined ? {} : { approval_id: approvalId }),
        });
      } catch (err) {
        if (!(err instanceof ApprovalRequestError)) throw err;
        if (err.reason === 'token') return { answer: refuse(new VerifierError('ERR_TOKEN_REVOKED', { message: err.message })) };
        service.report(err.reason === 'unreachable' ? err : new Error(`tool approvals are broken: ${err.message}`));
        return { answer: unreachableAnswer(id, cors) };
      }

      switch (answer.status) {
        case 'approved':
          try {
            const approval = await verifyApprovalToken(answer.approval_token, { auth, tool, argumentsDigest: digest, approvalId: answer.approval_id }, service.token);
            return { auth: { ...auth, extra: { ...auth.extra, approval } } };
          } catch (err) {
            if (isVerifierError(err)) {
              service.report(err);
              return { answer: unreachableAnswer(id, cors) };
            }
            if (!(err instanceof ApprovalTokenError)) throw err;
            service.report(new Error(`refused an approval of ${tool} from the authorization server: ${err.message}`));
            return { answer: jsonRpcError(200, id, -32603, `Internal error: the approval of this call to ${tool} could not be verified`, cors) };
          }
        case 'pending': {
          const pending = { ...answer, tool, summary };
          const elicit = mode === 'elicitation' || (mode === 'auto' && declaresUrlElicitation(params));
          return { answer: elicit ? elicitationAnswer(id, pending, cors) : pendingDenial(id, pending, cors) };
        }
        case 'denied':
          return { answer: refusedDenial(id, tool, answer.approval_id, cors) };
        case 'expired':
          return { answer: expiredDenial(id, tool, answer.approval_id, cors) };
        case 'unavailable':
          return { answer: unavailableDenial(id, tool, answer.error_description, cors) };
      }
    },
  };
}
