/**
 * `POST /tool-approvals`: an MCP server asks whether one tool call may run. It authenticates
 * as itself (HTTP Basic, a client in its resource's `resourceServerClients`) and sends the
 * bearer token the call carried, the tool, the digest of the arguments and a summary for the
 * person. The token must be one of ours and active (as introspection checks it), for an MCP
 * server the caller acts as. The answer (./service.ts) is never cached.
 *
 *   401 invalid_client       no, wrong, or non-MCP-server client credentials
 *   400 invalid_request      not JSON, or not the request's shape; 413 over 16 KiB
 *   400 invalid_token        not our token, expired, revoked, grant or account gone
 *   403 unauthorized_client  a token for an MCP server the caller does not act as
 *   405                      any method but POST
 */
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { requestFacts } from '../audit/request-facts.js';
import { JsonBodyError, readJson } from '../http/json-body.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderHolder } from '../provider/holder.js';
import type { OwnAccessTokens } from '../provider/own-access-tokens.js';
import type { ResourceRegistry } from '../provider/resources.js';
import { answerInvalidClient, authenticateResourceServer, ResourceServerAuthError } from '../resource-servers/authenticate.js';
import { ARGUMENTS_DIGEST } from '../verifier/tool-arguments.js';
import type { ToolApprovalService } from './service.js';

export const TOOL_APPROVALS_PATH = '/tool-approvals';
export const BODY_LIMIT = 16 * 1024;

const requestSchema = z
  .object({
    token: z.string().min(1).max(8192),
    tool: z.string().min(1).max(100),
    arguments_digest: z.string().regex(ARGUMENTS_DIGEST, 'must be sha-256: and 43 base64url characters'),
    summary: z.string().min(1).max(300),
    approval_id: z.string().min(1).max(200).optional(),
  })
  .strict();

export interface ToolApprovalsEndpointDeps {
  holder: ProviderHolder;
  resources: ResourceRegistry;
  tokens: OwnAccessTokens;
  service: ToolApprovalService;
  log: Logger;
  basePath: string;
}

function refuse(ctx: Context, status: number, error: string, description?: string): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error, ...(description === undefined ? {} : { error_description: description }) };
}

/** The first field zod found wrong, named; never the value (it may be the token). */
function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid request';
  if (issue.code === 'unrecognized_keys') return `unknown field ${issue.keys.join(', ')}`;
  const field = issue.path.join('.') || 'body';
  return `${field}: ${issue.message}`;
}

export function toolApprovalsEndpoint(deps: ToolApprovalsEndpointDeps): Middleware {
  const { holder, resources, tokens, service, log } = deps;
  const path = `${deps.basePath}${TOOL_APPROVALS_PATH}`;

  return async (ctx, next) => {
    if (ctx.path !== path) return next();
    if (ctx.method !== 'POST') {
      ctx.status = 405;
      ctx.set('Allow', 'POST');
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'invalid_request', error_description: 'use POST' };
      return;
    }

    let caller: Awaited<ReturnType<typeof authenticateResourceServer>>;
    try {
      caller = await authenticateResourceServer(ctx, holder, resources);
    } catch (err) {
      if (!(err instanceof ResourceServerAuthError)) throw err;
      log.info({ event: 'tool_approval.client_auth_failed', requestId: ctx.state.requestId, reason: err.message }, 'tool approval request: client authentication failed');
      answerInvalidClient(ctx);
      return;
    }

    let body: unknown;
    try {
      body = await readJson(ctx, BODY_LIMIT);
    } catch (err) {
      if (!(err instanceof JsonBodyError)) throw err;
      refuse(ctx, err.status, 'invalid_request', err.message);
      return;
    }
    const parsed = requestSchema.safeParse(body);
    if (!parsed.success) {
      refuse(ctx, 400, 'invalid_request', describeIssue(parsed.error));
      return;
    }
    const input = parsed.data;

    const claims = await tokens.verify(input.token);
    if (!claims) {
      refuse(ctx, 400, 'invalid_token', 'the token is not valid');
      return;
    }
    const audiences = Array.isArray(claims.aud) ? claims.aud : claims.aud === undefined ? [] : [claims.aud];
    const resource = audiences.find((aud) => caller.resources.has(aud));
    if (resource === undefined) {
      refuse(ctx, 403, 'unauthorized_client', 'the token is not for an MCP server this client acts as');
      return;
    }
    if (!(await tokens.isActive(claims))) {
      refuse(ctx, 400, 'invalid_token', 'the token is not active');
      return;
    }

    const answer = await service.answer(
      {
        claims,
        resource,
        askedBy: caller.clientId,
        tool: input.tool,
        argumentsDigest: input.arguments_digest,
        summary: input.summary,
        approvalId: input.approval_id,
      },
      requestFacts(ctx),
    );
    log.info(
      { event: 'tool_approval.answered', requestId: ctx.state.requestId, clientId: claims.client_id, resource, tool: input.tool, status: answer.status },
      'tool approval answered',
    );
    ctx.status = 200;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = answer;
  };
}
