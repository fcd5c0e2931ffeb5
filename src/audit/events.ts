/**
 * What the audit log records: the event names and the shape of one event, as the rest of
 * the server hands it to the audit log (src/audit/log.ts adds time, chain, sequence and
 * hashes). Only identifiers ever go in — never a token, code, secret or password: the
 * schema has no free-form field, and `details` holds short identifier strings, numbers,
 * booleans and lists of scope-like strings only.
 */
import { z } from 'zod';

export const AUDIT_EVENTS = [
  'login.succeeded',
  'login.failed',
  'consent.offered',
  'consent.granted',
  'consent.refused',
  'token.issued',
  'token.refreshed',
  'token.introspected',
  'token.revoked',
  'grant.revoked',
  'refresh_token.reuse_detected',
  'client.registered',
  'client.registration_rejected',
  'cimd.rejected',
  'rate_limit.hit',
  'key.rotated',
  'admin.user_added',
  'admin.user_removed',
  'admin.user_password_changed',
  'admin.user_roles_changed',
  'admin.grant_revoked',
  'account.provisioned',
  'account.deprovisioned',
  'connection.disabled',
  'second_factor.enrolled',
  'second_factor.removed',
  'second_factor.verified',
  'second_factor.failed',
  'approval.requested',
  'approval.granted',
  'approval.refused',
  'approval.expired',
  'approval.redeemed',
  'tool.called',
] as const;

export type AuditEventName = (typeof AUDIT_EVENTS)[number];

const identifier = z.string().min(1).max(512);
const detailValue = z.union([z.string().max(512), z.number(), z.boolean(), z.array(z.string().max(256)).max(200)]);

export const auditEventSchema = z
  .object({
    event: z.enum(AUDIT_EVENTS),
    outcome: z.enum(['success', 'failure']),
    /** who acted: an account id, `cli:<user>` for the command line, or a client id for machine requests */
    actor: identifier.optional(),
    client: identifier.optional(),
    /** the MCP server (canonical URI) concerned, if one */
    resource: identifier.optional(),
    requestId: identifier.optional(),
    /** the request's source address */
    source: identifier.optional(),
    /** identifiers and small facts: grantId, jti, scopes, reason, … (never credentials) */
    details: z.record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]{0,63}$/), detailValue).optional(),
  })
  .strict();

export type AuditEvent = z.infer<typeof auditEventSchema>;

/** Keys `details` may never use, whatever their value: a guard against a credential slipping in. */
export const FORBIDDEN_DETAIL_KEYS = /token|secret|password|code|assertion|cookie|authorization|verifier/i;

/** The audit log as the server uses it. `record` never throws: a failure to write is logged. */
export interface AuditLog {
  record(event: AuditEvent): void;
  /** how many records have been accepted so far (a request compares it before and after) */
  readonly recorded: number;
  /** resolves once every record accepted so far is written, or counted lost; never rejects */
  written(): Promise<void>;
  /** resolves when everything recorded so far, and meanwhile, is written (tests, shutdown) */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * What `mcp-authz audit search --user U` matches: the `actor`, or — for an event about another
 * account (`admin.user_*`, a grant revoked by an operator) — `details.accountId` or
 * `details.username`. Events about an account should name it there.
 */
export const AUDIT_USER_DETAIL_KEYS = ['accountId', 'username'] as const;
