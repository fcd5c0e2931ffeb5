/**
 * The approval token (contract of issue #15): a JWT the authorization server signs with its
 * access-token key (`typ: mcp-approval+jwt`) when a person (or a policy) approved one call.
 * Checked offline against the AS key set the verifier already uses, and bound to everything
 * that makes the call this call: this resource, the access token's client, subject and grant,
 * the tool and the digest of its arguments. Each `jti` is accepted once (replay cache until `exp`).
 */
import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { AuthInfo } from './types.js';
import { audienceMatches } from './verify.js';
import { nowSeconds } from './util.js';

/** The JWT `typ` of an approval token. */
export const APPROVAL_TOKEN_TYPE = 'mcp-approval+jwt';
/** The RFC 9396 `authorization_details` type of an approved tool call. */
export const TOOL_CALL_DETAILS_TYPE = 'mcp_tool_call';

/** Why an approval token was refused (for logs; the client sees one generic message). */
export class ApprovalTokenError extends Error {
  override readonly name = 'ApprovalTokenError';
}

/** The approval a verified token carries, put on `auth.extra.approval`. */
export interface ToolCallApproval {
  /** the approval id (the token's `jti`), for execution reports */
  id: string;
  /** who approved: a person, or the authorization server's policy */
  approvedBy: 'person' | 'policy';
}

export interface ApprovalTokenCheck {
  issuer: string;
  canonicalResource: string;
  algorithms: string[];
  clockTolerance: number;
  keys: JWTVerifyGetKey;
  replay: ReplayCache;
}

export interface ExpectedCall {
  /** the verified access token of the call */
  auth: AuthInfo;
  tool: string;
  argumentsDigest: string;
  /** the `approval_id` the authorization server answered with */
  approvalId: string;
}

const claimOf = (auth: AuthInfo, name: string): unknown => (auth.extra?.claims as Record<string, unknown> | undefined)?.[name];

/** Verifies an approval token for `call`; rejects with {@link ApprovalTokenError}. */
export async function verifyApprovalToken(token: string, call: ExpectedCall, check: ApprovalTokenCheck): Promise<ToolCallApproval> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, check.keys, {
      issuer: check.issuer,
      typ: APPROVAL_TOKEN_TYPE,
      algorithms: check.algorithms,
      clockTolerance: check.clockTolerance,
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (err) {
    if (err instanceof errors.JOSEError) throw new ApprovalTokenError(`approval token: ${err.code}: ${err.message}`, { cause: err });
    throw err;
  }
  const refuse = (why: string): never => {
    throw new ApprovalTokenError(`approval token: ${why}`);
  };
  if (!audienceMatches(payload.aud, check.canonicalResource)) refuse('aud is not this resource');
  const { auth } = call;
  const clientId = claimOf(auth, 'client_id') ?? claimOf(auth, 'azp');
  if (typeof payload.client_id !== 'string' || payload.client_id !== clientId) refuse('client_id is not the access token client');
  if (typeof payload.sub !== 'string' || payload.sub !== claimOf(auth, 'sub')) refuse('sub is not the access token subject');
  // both absent, or equal
  if (payload.grant_id !== claimOf(auth, 'grant_id')) refuse('grant_id is not the access token grant');
  if (payload.jti !== call.approvalId) refuse('jti is not the approval id');
  const details = Array.isArray(payload.authorization_details) ? (payload.authorization_details[0] as Record<string, unknown> | undefined) : undefined;
  if (typeof details !== 'object' || details === null || details.type !== TOOL_CALL_DETAILS_TYPE) refuse(`authorization_details[0].type is not ${TOOL_CALL_DETAILS_TYPE}`);
  if (details!.tool !== call.tool) refuse('it approves another tool');
  if (details!.arguments_digest !== call.argumentsDigest) refuse('it approves other arguments');
  const approvedBy = payload.approved_by;
  if (approvedBy !== 'person' && approvedBy !== 'policy') refuse('approved_by is neither person nor policy');
  // last: a token refused for another reason does not use up its jti
  if (!check.replay.use(payload.jti!, payload.exp! + check.clockTolerance)) refuse('its jti was used before (a replay), or the replay cache is full');
  return { id: payload.jti!, approvedBy: approvedBy as 'person' | 'policy' };
}

/**
 * The `jti`s of approval tokens accepted, each until it expires. Bounded: when full of
 * unexpired entries it refuses new ones (an approval fails closed) rather than forget one that
 * could then be replayed.
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  constructor(readonly maxEntries = 10_000) {}

  /** true the first time `jti` is used (remembered until `until`, epoch seconds); false for a replay or when full. */
  use(jti: string, until: number, now = nowSeconds()): boolean {
    const known = this.#seen.get(jti);
    if (known !== undefined && known >= now) return false;
    if (this.#seen.size >= this.maxEntries) {
      for (const [key, expires] of this.#seen) if (expires < now) this.#seen.delete(key);
      if (this.#seen.size >= this.maxEntries) return false;
    }
    this.#seen.set(jti, until);
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }
}
