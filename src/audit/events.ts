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

const EVENT_NAMES: ReadonlySet<string> = new Set(AUDIT_EVENTS);
const IDENTIFIER_FIELDS = ['actor', 'client', 'resource', 'requestId', 'source'] as const;
const EVENT_FIELDS: ReadonlySet<string> = new Set(['event', 'outcome', ...IDENTIFIER_FIELDS, 'details']);
const DETAIL_KEY = /^[a-zA-Z][a-zA-Z0-9_]{0,63}$/;

/**
 * The server's hot path past {@link auditEventSchema}: a copy of `input` when it is plainly an
 * audit event (a plain object with no `undefined` member whose every field the schema would
 * accept as it is), else `undefined`, and the caller asks the schema, which stays the one
 * definition and the one source of error messages. It never accepts what the schema refuses,
 * and what it returns is what the schema's parse returns (test/audit/event-guard.test.ts holds
 * the two side by side): the schema costs some 20 µs of CPU per token request under load.
 */
export function plainAuditEvent(input: unknown): AuditEvent | undefined {
  if (!isPlainRecord(input)) return undefined;
  for (const key in input) if (!EVENT_FIELDS.has(key)) return undefined;
  const { event, outcome, details } = input;
  if (typeof event !== 'string' || !EVENT_NAMES.has(event)) return undefined;
  if (outcome !== 'success' && outcome !== 'failure') return undefined;
  const out: Record<string, unknown> = { event, outcome };
  for (const field of IDENTIFIER_FIELDS) {
    if (!(field in input)) continue;
    const value = input[field];
    if (typeof value !== 'string' || value.length < 1 || value.length > 512) return undefined;
    out[field] = value;
  }
  if ('details' in input) {
    if (!isPlainRecord(details) || Object.getOwnPropertySymbols(details).length) return undefined;
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(details)) {
      if (!DETAIL_KEY.test(key)) return undefined;
      const value = plainDetailValue(details[key]);
      if (value === undefined) return undefined;
      copy[key] = value;
    }
    out.details = copy;
  }
  return out as AuditEvent;
}

function plainDetailValue(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
      return value.length <= 512 ? value : undefined;
    case 'number':
      return Number.isFinite(value) ? value : undefined;
    case 'boolean':
      return value;
    default:
      if (!Array.isArray(value) || value.length > 200) return undefined;
      for (const item of value as unknown[]) if (typeof item !== 'string' || item.length > 256) return undefined;
      return [...(value as string[])];
  }
}

/** An object made by `{}` (or with no prototype): nothing inherited that a parse would read differently. */
function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

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
