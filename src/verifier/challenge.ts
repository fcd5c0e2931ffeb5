/**
 * The HTTP answer for a refused request (RFC 6750 §3, RFC 9728 §5.1, MCP "Runtime
 * Insufficient Scope Errors"):
 * - no token sent   → 401 `Bearer resource_metadata="…"` (no `error`)
 * - invalid token   → 401 `Bearer error="invalid_token", error_description="…", resource_metadata="…"`
 * - missing scopes  → 403 `Bearer error="insufficient_scope", error_description="…", scope="<all the operation needs>", resource_metadata="…"`
 * - AS unavailable  → 503 with `Retry-After`
 * Parameters are quoted strings with `"` and `\` escaped, in the order error,
 * error_description, scope, resource_metadata; descriptions never contain `scope=` (the SDK
 * client finds parameters with a regex, first match wins).
 */
import { isVerifierError } from './errors.js';
import { union } from './scopes.js';

/** A ready-to-send HTTP response. `body` is JSON text. */
export interface Challenge {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface ChallengeContext {
  /** absolute URL of the protected resource metadata */
  metadataUrl: string;
  stepUpScopes: 'operation' | 'operation-and-granted';
}

/** Headers every answer of the verifier carries, so browser clients can read the challenge. */
export const EXPOSE_HEADERS = 'WWW-Authenticate, Mcp-Session-Id';

/** RFC 7230 quoted-string with `"` and `\` escaped; control characters dropped. */
export function quote(value: string): string {
  return `"${value.replace(/[\u0000-\u001f\u007f]/g, '').replace(/[\\"]/g, '\\$&')}"`;
}

/** `Bearer k="v", …` from ordered parameters (undefined values left out). */
export function bearerChallenge(params: Array<[string, string | undefined]>): string {
  const parts = params.filter((entry): entry is [string, string] => entry[1] !== undefined).map(([key, value]) => `${key}=${quote(value)}`);
  return parts.length ? `Bearer ${parts.join(', ')}` : 'Bearer';
}

const baseHeaders = (): Record<string, string> => ({
  'Content-Type': 'application/json',
  'Cache-Control': 'no-store',
  'Access-Control-Expose-Headers': EXPOSE_HEADERS,
});

/** The answer for `error` (undefined: no token was sent). Non-verifier errors become a plain 500. */
export function challengeFor(error: unknown, context: ChallengeContext): Challenge {
  const headers = baseHeaders();
  if (error === undefined) {
    headers['WWW-Authenticate'] = bearerChallenge([['resource_metadata', context.metadataUrl]]);
    return { status: 401, headers, body: JSON.stringify({ error_description: 'A bearer access token is required' }) };
  }
  if (!isVerifierError(error)) {
    return { status: 500, headers, body: JSON.stringify({ error: 'server_error', error_description: 'Internal server error' }) };
  }
  const scopeList = (scopes: readonly string[] | undefined) => (scopes?.length ? scopes.join(' ') : undefined);
  switch (error.status) {
    case 503:
      headers['Retry-After'] = String(error.retryAfter ?? 5);
      return { status: 503, headers, body: JSON.stringify({ error: 'temporarily_unavailable', error_description: error.description }) };
    case 403: {
      const scopes =
        context.stepUpScopes === 'operation-and-granted' ? union([error.requiredScopes ?? [], error.grantedScopes ?? []]) : (error.requiredScopes ?? []);
      headers['WWW-Authenticate'] = bearerChallenge([
        ['error', 'insufficient_scope'],
        ['error_description', error.description],
        ['scope', scopeList(scopes)],
        ['resource_metadata', context.metadataUrl],
      ]);
      return { status: 403, headers, body: JSON.stringify({ error: 'insufficient_scope', error_description: error.description }) };
    }
    default: {
      const scope = scopeList(error.requiredScopes);
      if (error.oauthError === undefined) {
        headers['WWW-Authenticate'] = bearerChallenge([
          ['scope', scope],
          ['resource_metadata', context.metadataUrl],
        ]);
        return { status: 401, headers, body: JSON.stringify({ error_description: error.description }) };
      }
      headers['WWW-Authenticate'] = bearerChallenge([
        ['error', error.oauthError],
        ['error_description', error.description],
        ['scope', scope],
        ['resource_metadata', context.metadataUrl],
      ]);
      return { status: 401, headers, body: JSON.stringify({ error: error.oauthError, error_description: error.description }) };
    }
  }
}
