/**
 * `POST /tool-executions`: MCP servers report the tool calls their verifier let through, and
 * each lands in the audit log as `tool.called` (contract of issue #15).
 *
 * - HTTP Basic as a client listed in a resource's `resourceServerClients` (401 `invalid_client`);
 * - a JSON body of at most 256 KiB (413 above), `{ executions: [...] }` of 1..100 entries (400);
 * - an entry for an MCP server the client does not act as is refused on its own
 *   (`rejected: [{ id, error: 'unauthorized_resource' }]`), as is one the audit log would refuse
 *   (`invalid_entry`: a token-like value); the others are accepted;
 * - idempotent by id: a retry of an entry already recorded is accepted without a second audit
 *   record. Ids are claimed per reporting client, atomically across replicas (the store's
 *   exactly-one claim, `store.rotations`), and remembered for two days.
 */
import { createHash } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import type { Store } from '../../adapters/contract.js';
import type { AuditEvent, AuditLog } from '../audit/events.js';
import { checkAuditEvent } from '../audit/log.js';
import { requestFacts } from '../audit/request-facts.js';
import { readBody } from '../http/form-params.js';
import type { ProviderHolder } from '../provider/holder.js';
import type { ResourceRegistry } from '../provider/resources.js';
import { answerInvalidClient, authenticateResourceServer, ResourceServerAuthError } from '../resource-servers/authenticate.js';

export const TOOL_EXECUTIONS_PATH = '/tool-executions';

/** Largest request body, bytes. */
export const MAX_BODY_BYTES = 256 * 1024;
/** Seconds an execution id is remembered (a retry within it is not recorded twice). */
export const REMEMBER_IDS_SECONDS = 2 * 24 * 3600;

const id = z.string().uuid();
const text = (max: number) => z.string().min(1).max(max);

export const executionSchema = z
  .object({
    id,
    tool: text(100),
    resource: text(512),
    subject: text(512).optional(),
    client_id: text(512),
    grant_id: text(512).optional(),
    token_jti: text(512).optional(),
    approval_id: text(200).optional(),
    outcome: z.enum(['success', 'error']),
    duration_ms: z.number().int().min(0).max(2_147_483_647),
    arguments_digest: z.string().regex(/^sha-256:[A-Za-z0-9_-]{43}$/),
    arguments: z.string().max(512).optional(),
    started_at: z.string().datetime({ offset: true }),
  })
  .strict();

export type ToolExecution = z.infer<typeof executionSchema>;

const requestSchema = z.object({ executions: z.array(executionSchema).min(1).max(100) }).strict();

export interface ToolExecutionDeps {
  holder: ProviderHolder;
  resources: ResourceRegistry;
  store: Store;
  audit: AuditLog;
  basePath: string;
}

function answer(ctx: Context, status: number, body: unknown): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

const invalidRequest = (ctx: Context, description: string) => answer(ctx, 400, { error: 'invalid_request', error_description: description });

/** The first problem zod found, as a short wire-safe sentence (names the field, never echoes a value). */
function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid body';
  const path = issue.path.length ? issue.path.join('.') : 'body';
  return `${path}: ${issue.message}`.slice(0, 200);
}

/** The store key under which a reporting client's execution id is claimed (hashed: ids are the caller's to choose). */
function claimKey(clientId: string, executionId: string): string {
  return `tool-execution:${createHash('sha256').update(`${clientId}\u0000${executionId}`).digest('base64url')}`;
}

export function toolExecutionsEndpoint({ holder, resources, store, audit, basePath }: ToolExecutionDeps): Middleware {
  const path = `${basePath}${TOOL_EXECUTIONS_PATH}`;
  return async (ctx, next) => {
    if (ctx.path !== path) return next();
    if (ctx.method !== 'POST') {
      ctx.set('Allow', 'POST');
      return answer(ctx, 405, { error: 'invalid_request', error_description: 'use POST' });
    }
    let client;
    try {
      client = await authenticateResourceServer(ctx, holder, resources);
    } catch (err) {
      if (err instanceof ResourceServerAuthError) return answerInvalidClient(ctx);
      throw err;
    }
    if (!ctx.is('application/json')) return invalidRequest(ctx, 'the body must be application/json');
    const raw = await readBody(ctx, MAX_BODY_BYTES);
    if (raw === undefined) return answer(ctx, 413, { error: 'invalid_request', error_description: `the body is larger than ${MAX_BODY_BYTES} bytes` });
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      return invalidRequest(ctx, 'the body is not JSON');
    }
    const parsed = requestSchema.safeParse(json);
    if (!parsed.success) return invalidRequest(ctx, describeIssue(parsed.error));

    let accepted = 0;
    const rejected: { id: string; error: string }[] = [];
    for (const execution of parsed.data.executions) {
      const resource = resources.find(execution.resource)?.uri;
      if (!resource || !client.resources.has(resource)) {
        rejected.push({ id: execution.id, error: 'unauthorized_resource' });
        continue;
      }
      const event: AuditEvent = {
        event: 'tool.called',
        outcome: execution.outcome === 'success' ? 'success' : 'failure',
        actor: execution.subject ?? execution.client_id,
        client: execution.client_id,
        resource,
        ...requestFacts(ctx),
        details: {
          executionId: execution.id,
          tool: execution.tool,
          ...(execution.grant_id ? { grantId: execution.grant_id } : {}),
          ...(execution.approval_id ? { approvalId: execution.approval_id } : {}),
          durationMs: execution.duration_ms,
          argumentsDigest: execution.arguments_digest,
          ...(execution.arguments !== undefined ? { arguments: execution.arguments } : {}),
          reportedBy: client.clientId,
          // "token" may not name a detail (FORBIDDEN_DETAIL_KEYS): a JWT's id is no credential
          ...(execution.token_jti ? { jti: execution.token_jti } : {}),
          startedAt: execution.started_at,
        },
      };
      // what the audit log would refuse (a token-like value) is refused here, before the id is taken
      if (!checkAuditEvent(event).ok) {
        rejected.push({ id: execution.id, error: 'invalid_entry' });
        continue;
      }
      accepted++;
      // a retry of an entry recorded before: accepted, not recorded twice
      if (await store.rotations.claim(claimKey(client.clientId, execution.id), REMEMBER_IDS_SECONDS)) audit.record(event);
    }
    answer(ctx, 200, { accepted, rejected });
  };
}
