/**
 * Access token checks: the `Authorization` header, RFC 9068 JWT access tokens (signature via
 * the AS key set, `typ` at+jwt, `iss`, `aud`, `exp`/`nbf`, algorithm allow-list, not
 * sender-constrained) and RFC 7662 introspection answers, each turned into {@link AuthInfo}.
 */
import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { VerifierError, type VerifierErrorCode } from './errors.js';
import type { IntrospectionResponse } from './introspection.js';
import { expandScopes } from './scopes.js';
import type { AuthInfo } from './types.js';
import { tryCanonicalResourceUri } from './uri.js';
import { nowSeconds, splitScope } from './util.js';

/** RFC 6750 §2.1 b64token. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Longer credentials are refused unread. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const BEARER = /^Bearer(?: +(.*))?$/is;

/** The bearer token of an `Authorization` header value: ERR_TOKEN_MISSING without a Bearer credential, ERR_TOKEN_MALFORMED for a bad one. */
export function bearerToken(authorization: string | null | undefined): string {
  const header = authorization?.trim();
  if (!header) throw new VerifierError('ERR_TOKEN_MISSING');
  const match = BEARER.exec(header);
  if (!match) throw new VerifierError('ERR_TOKEN_MISSING', { message: 'the Authorization header does not use the Bearer scheme' });
  const token = match[1]?.trim() ?? '';
  checkTokenSyntax(token);
  return token;
}

/** ERR_TOKEN_MALFORMED unless `token` is a plausible bearer token. */
export function checkTokenSyntax(token: string): void {
  if (!token || token.length > MAX_TOKEN_LENGTH || !TOKEN68.test(token)) {
    throw new VerifierError('ERR_TOKEN_MALFORMED', { message: 'the bearer credential is not a well-formed token' });
  }
}

/**
 * Whether `token` has the shape of a compact JWS (three dot-separated parts) rather than an
 * opaque token or a JWE (five parts). Only the shape: `jwtVerify` checks everything else,
 * and decoding the header here as well would cost every verification a second parse.
 */
export function looksLikeJws(token: string): boolean {
  const first = token.indexOf('.');
  const second = first === -1 ? -1 : token.indexOf('.', first + 1);
  return second !== -1 && token.indexOf('.', second + 1) === -1;
}

/** Whether an `aud` value (string or array) contains `canonicalResource`, compared canonically. */
export function audienceMatches(aud: unknown, canonicalResource: string): boolean {
  // the exact canonical string (what a well-behaved AS sends) needs no URL parsing
  if (aud === canonicalResource) return true;
  const values = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  return values.some((value) => typeof value === 'string' && (value === canonicalResource || tryCanonicalResourceUri(value) === canonicalResource));
}

/** ERR_TOKEN_DPOP_BOUND for a token bound to a key (DPoP `jkt`, mTLS `x5t#S256`): it is not a bearer token. */
function checkNotSenderConstrained(cnf: unknown, tokenType?: string): void {
  const bound = typeof cnf === 'object' && cnf !== null && ('jkt' in cnf || 'x5t#S256' in cnf);
  if (bound || tokenType?.toLowerCase() === 'dpop') {
    throw new VerifierError('ERR_TOKEN_DPOP_BOUND', { message: 'a sender-constrained token was presented as a bearer token' });
  }
}

export interface JwtCheck {
  issuer: string;
  canonicalResource: string;
  algorithms: string[];
  clockTolerance: number;
  keys: JWTVerifyGetKey;
}

/** The verified claims of a JWT access token; rejects with a VerifierError. */
export async function verifyJwt(token: string, check: JwtCheck): Promise<JWTPayload> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, check.keys, {
      issuer: check.issuer,
      typ: 'at+jwt',
      algorithms: check.algorithms,
      clockTolerance: check.clockTolerance,
      requiredClaims: ['exp'],
    }));
  } catch (err) {
    throw classifyJoseError(err);
  }
  if (!audienceMatches(payload.aud, check.canonicalResource)) {
    throw new VerifierError('ERR_TOKEN_AUDIENCE', { message: 'the token audience does not contain this resource' });
  }
  checkNotSenderConstrained(payload.cnf);
  return payload;
}

/** A jose failure as a VerifierError (VerifierErrors and non-jose errors pass through). */
export function classifyJoseError(err: unknown): unknown {
  if (err instanceof VerifierError || !(err instanceof errors.JOSEError)) return err;
  let code: VerifierErrorCode = 'ERR_TOKEN_INVALID';
  if (err instanceof errors.JWTExpired) code = 'ERR_TOKEN_EXPIRED';
  else if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'typ') code = 'ERR_TOKEN_TYPE';
    else if (err.claim === 'iss') code = 'ERR_TOKEN_ISSUER';
    else if (err.claim === 'aud') code = 'ERR_TOKEN_AUDIENCE';
  } else if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) code = 'ERR_TOKEN_MALFORMED';
  return new VerifierError(code, { message: `${err.code}: ${err.message}`, cause: err });
}

export interface AuthInfoInput {
  token: string;
  claims: Record<string, unknown>;
  issuer: string;
  resource: URL;
  scopeHierarchy: Record<string, string[]> | undefined;
}

/** {@link AuthInfo} from verified claims (a JWT payload or an active introspection answer). */
export function toAuthInfo({ token, claims, issuer, resource, scopeHierarchy }: AuthInfoInput): AuthInfo {
  const clientId = typeof claims.client_id === 'string' ? claims.client_id : typeof claims.azp === 'string' ? claims.azp : '';
  // `scope` (RFC 9068 / RFC 7662); `scp` as some authorization servers send it
  const tokenScopes = claims.scope !== undefined ? splitScope(claims.scope) : splitScope(claims.scp);
  const extra: Record<string, unknown> = { subject: claims.sub, jti: claims.jti, issuer, tokenScopes, claims };
  if (typeof claims.grant_id === 'string') extra.grantId = claims.grant_id;
  return {
    token,
    clientId,
    scopes: expandScopes(tokenScopes, scopeHierarchy),
    expiresAt: claims.exp as number,
    resource: new URL(resource.href),
    extra,
  };
}

export interface IntrospectionCheck {
  issuer: string;
  canonicalResource: string;
  clockTolerance: number;
}

/** ERR_* unless an introspection answer is an active, unexpired bearer token for this resource from this issuer. */
export function checkIntrospection(answer: IntrospectionResponse, check: IntrospectionCheck): void {
  if (!answer.active) throw new VerifierError('ERR_TOKEN_INVALID', { message: 'the authorization server reports the token inactive' });
  if (answer.iss !== undefined && answer.iss !== check.issuer) throw new VerifierError('ERR_TOKEN_ISSUER');
  if (!audienceMatches(answer.aud, check.canonicalResource)) {
    throw new VerifierError('ERR_TOKEN_AUDIENCE', { message: 'the introspected audience does not contain this resource' });
  }
  const now = nowSeconds();
  if (typeof answer.exp !== 'number') throw new VerifierError('ERR_TOKEN_INVALID', { message: 'the introspection answer has no exp' });
  if (answer.exp <= now - check.clockTolerance) throw new VerifierError('ERR_TOKEN_EXPIRED');
  if (typeof answer.nbf === 'number' && answer.nbf > now + check.clockTolerance) {
    throw new VerifierError('ERR_TOKEN_INVALID', { message: 'the token is not valid yet' });
  }
  checkNotSenderConstrained(answer.cnf, answer.token_type);
}
