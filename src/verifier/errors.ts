/**
 * The one error type the verifier throws for a request it refuses. Each carries a stable
 * `code`, the HTTP `status`, the OAuth error code for `WWW-Authenticate` and a wire-safe
 * `description`; `message` may hold more detail for logs but never the token.
 */

/** Stable reasons a request is refused. */
export type VerifierErrorCode =
  /** no `Authorization: Bearer` credential (401, challenge without `error=`) */
  | 'ERR_TOKEN_MISSING'
  /** a bearer credential that is not a well-formed token (401 invalid_token) */
  | 'ERR_TOKEN_MALFORMED'
  /** bad signature, unknown key, disallowed algorithm, inactive at introspection, not yet valid (401 invalid_token) */
  | 'ERR_TOKEN_INVALID'
  /** `exp` passed (401 invalid_token, so clients refresh) */
  | 'ERR_TOKEN_EXPIRED'
  /** revoked by jti, grant or subject on the revocation feed (401 invalid_token) */
  | 'ERR_TOKEN_REVOKED'
  /** `aud` does not name this resource (401 invalid_token) */
  | 'ERR_TOKEN_AUDIENCE'
  /** `iss` is not the configured issuer (401 invalid_token) */
  | 'ERR_TOKEN_ISSUER'
  /** JWT `typ` is not `at+jwt` (e.g. an ID token) (401 invalid_token) */
  | 'ERR_TOKEN_TYPE'
  /** sender-constrained (`cnf.jkt` DPoP or `cnf.x5t#S256` mTLS) token presented as a bearer token (401 invalid_token) */
  | 'ERR_TOKEN_DPOP_BOUND'
  /** the token lacks scopes the operation needs (403 insufficient_scope) */
  | 'ERR_INSUFFICIENT_SCOPE'
  /** the authorization server (metadata, keys, introspection, revocation feed) cannot be reached or is stale (503) */
  | 'ERR_AUTHZ_UNAVAILABLE';

/** OAuth error codes that appear in `WWW-Authenticate` (RFC 6750 §3.1). */
export type OAuthErrorCode = 'invalid_token' | 'insufficient_scope';

const DESCRIPTIONS: Record<VerifierErrorCode, string> = {
  ERR_TOKEN_MISSING: 'A bearer access token is required',
  ERR_TOKEN_MALFORMED: 'The access token is malformed',
  ERR_TOKEN_INVALID: 'The access token is invalid',
  ERR_TOKEN_EXPIRED: 'The access token has expired',
  ERR_TOKEN_REVOKED: 'The access token has been revoked',
  ERR_TOKEN_AUDIENCE: 'The access token was not issued for this resource',
  ERR_TOKEN_ISSUER: 'The access token was not issued by the expected authorization server',
  ERR_TOKEN_TYPE: 'The token is not an access token',
  ERR_TOKEN_DPOP_BOUND: 'The access token is sender-constrained and cannot be used as a bearer token',
  ERR_INSUFFICIENT_SCOPE: 'The access token lacks the scopes this request requires',
  ERR_AUTHZ_UNAVAILABLE: 'Access token verification is temporarily unavailable',
};

export interface VerifierErrorOptions {
  /** detail for logs (never the token); defaults to the wire-safe description */
  message?: string;
  cause?: unknown;
  /** for ERR_INSUFFICIENT_SCOPE: every scope the operation needs */
  requiredScopes?: readonly string[];
  /** for ERR_INSUFFICIENT_SCOPE: the scopes the token has */
  grantedScopes?: readonly string[];
  /** for ERR_TOKEN_MISSING: scopes every request needs, for the challenge's `scope` */
  challengeScopes?: readonly string[];
  /** for ERR_AUTHZ_UNAVAILABLE: seconds for `Retry-After` */
  retryAfter?: number;
}

/**
 * Marks every VerifierError, also one that is at the same time an instance of the MCP SDK's
 * error classes (src/verifier/sdk-errors.ts) and one from another copy of this module.
 */
export const VERIFIER_ERROR: unique symbol = Symbol.for('mcp-authz.VerifierError') as never;

/**
 * A refused request. Turn it into an HTTP answer with `verifier.challenge(err)`. Where the
 * MCP SDK is installed, what `verifyAccessToken` throws is also an instance of the SDK's
 * matching error class; `instanceof VerifierError` holds for it all the same.
 *
 * @example
 * try { await verifier.authenticate(req.headers.authorization) }
 * catch (err) { if (err instanceof VerifierError) log.info({ code: err.code }); throw err }
 */
export class VerifierError extends Error {
  override readonly name = 'VerifierError';
  readonly code: VerifierErrorCode;
  /** 401 for missing/invalid tokens, 403 for insufficient scope, 503 when the AS is unavailable */
  readonly status: 401 | 403 | 503;
  /** the RFC 6750 `error` value; undefined for a missing token and for 503 */
  readonly oauthError: OAuthErrorCode | undefined;
  /** safe to send to the client (`error_description`) */
  readonly description: string;
  /** every scope the refused operation needs (ERR_INSUFFICIENT_SCOPE), else the scopes all requests need, if any */
  readonly requiredScopes: readonly string[] | undefined;
  /** the scopes the token carried (ERR_INSUFFICIENT_SCOPE) */
  readonly grantedScopes: readonly string[] | undefined;
  /** seconds (ERR_AUTHZ_UNAVAILABLE) */
  readonly retryAfter: number | undefined;
  declare readonly [VERIFIER_ERROR]: true;

  /** Recognises the brand rather than the prototype (see {@link VERIFIER_ERROR}). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as { [VERIFIER_ERROR]?: unknown })[VERIFIER_ERROR] === true;
  }

  constructor(code: VerifierErrorCode, options: VerifierErrorOptions = {}) {
    const description = DESCRIPTIONS[code];
    super(options.message ?? description, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.description = description;
    this.status = code === 'ERR_INSUFFICIENT_SCOPE' ? 403 : code === 'ERR_AUTHZ_UNAVAILABLE' ? 503 : 401;
    this.oauthError =
      code === 'ERR_INSUFFICIENT_SCOPE' ? 'insufficient_scope' : code === 'ERR_TOKEN_MISSING' || code === 'ERR_AUTHZ_UNAVAILABLE' ? undefined : 'invalid_token';
    this.requiredScopes = options.requiredScopes ?? options.challengeScopes;
    this.grantedScopes = options.grantedScopes;
    this.retryAfter = code === 'ERR_AUTHZ_UNAVAILABLE' ? (options.retryAfter ?? 5) : undefined;
    Object.defineProperty(this, VERIFIER_ERROR, { value: true });
  }
}

/** `err instanceof VerifierError`, also across duplicated copies of this module. */
export function isVerifierError(err: unknown): err is VerifierError {
  return err instanceof VerifierError || (err instanceof Error && err.name === 'VerifierError' && typeof (err as { code?: unknown }).code === 'string');
}
