/**
 * Failed client authentication is limited (`rateLimits.clientAuthFailuresPerClientSource`,
 * `rateLimits.clientAuthFailuresPerSource`): a wrong client secret or a bad `private_key_jwt`
 * assertion at the token, introspection, revocation, pushed authorization and device
 * authorization endpoints, and the tool approval and tool execution endpoints. Without it only the token budget per client applied, so secrets
 * could be guessed at hundreds a minute.
 *
 * A request that presents client credentials (HTTP Basic, `client_secret`, or a
 * `client_assertion`) is counted before the engine checks them, per client id and source
 * address and per source address, in one atomic step: a burst of guesses cannot slip through
 * before the first failure is counted. When the engine's answer is anything but
 * `invalid_client`, the attempt is taken back (and the client+source count forgotten: whoever
 * holds the secret knows it) — at the token endpoint in the same step as the token limit counts
 * the request (src/provider/token-limit.ts), since a grant is only reached authenticated. Over a
 * limit: `429`, `Retry-After` and `temporarily_unavailable`, before the engine looks at the credentials; each attempt while limited doubles the wait, up
 * to an hour. Nothing is counted per client alone, so failures from some addresses never stop
 * the right credentials from another. Requests without credentials (public clients) are not
 * counted here, nor are a secret's credentials (HTTP Basic, `client_id` and `client_secret`)
 * that reached a grant in the last five minutes: sent again, they are no guess (src/http/limits.ts
 * `knownCredentials`). An assertion is single-use, so it is always counted.
 */
import type { Context, Middleware, Next } from 'koa';
import { adjustFormParams } from '../http/form-params.js';
import { describeWait, tooManyRequests, type RateLimits } from '../http/limits.js';

/** oidc-provider's endpoints, and ours that MCP servers call as themselves (src/resource-servers) */
const ENDPOINTS = ['/token', '/token/introspection', '/token/revocation', '/request', '/device/auth', '/tool-approvals', '/tool-executions'];

/** Longest client id kept in a counter key (ids are the caller's to choose). */
const MAX_ID_LENGTH = 512;

export function limitClientAuthentication(limits: RateLimits, basePath: string): Middleware {
  const paths = new Set(ENDPOINTS.map((path) => `${basePath}${path}`));

  /** The engine answered a request whose credentials were not counted: a refusal unmarks them. */
  const answered = (ctx: Context) => {
    if (invalidClient(ctx)) limits.clientAuthRejected(ctx);
  };

  /**
   * A request presenting credentials not known to be right (`knownCredentials` looked already, and
   * remembered them as the request's): counted before the engine checks them.
   */
  const counted = async (ctx: Context, next: Next, clientId: string) => {
    const attempt = await limits.clientAuth(clientId.slice(0, MAX_ID_LENGTH), ctx.ip, ctx);
    if ('refused' in attempt) {
      limits.logHit(ctx, attempt.refused, { clientId: clientId.slice(0, MAX_ID_LENGTH) });
      tooManyRequests(ctx, attempt.refused.retryAfterMs, `too many failed client authentications from this address; try again in ${describeWait(attempt.refused.retryAfterMs)}`);
      return;
    }
    await next();
    if (invalidClient(ctx)) limits.clientAuthRejected(ctx);
    else await attempt.succeeded();
  };

  /** Credentials in the form body (`client_secret`, `client_assertion`), read once the body is. */
  const fromBody = async (ctx: Context, next: Next) => {
    let clientId: string | undefined;
    let credentials: string | undefined;
    await adjustFormParams(ctx, (params) => {
      clientId = bodyClient(params);
      const secret = params.get('client_secret');
      if (secret !== null) credentials = `post ${params.get('client_id') ?? ''}\0${secret}`;
      return false;
    });
    if (clientId === undefined) return next();
    if (credentials !== undefined && limits.knownCredentials(ctx, credentials)) {
      await next();
      return answered(ctx);
    }
    return counted(ctx, next, clientId);
  };

  return (ctx, next) => {
    if (ctx.method !== 'POST' || !paths.has(ctx.path)) return next();
    // HTTP Basic names the client in a header: the body is then left for the engine to read
    const authorization = ctx.get('authorization');
    const clientId = basicClient(authorization);
    if (clientId === undefined) return fromBody(ctx, next);
    const credentials = `basic ${authorization.trim()}`;
    // credentials that reached a grant lately are no guess: nothing to count or take back (the
    // common case of a client asking again, so it goes without an async step of its own)
    if (limits.knownCredentials(ctx, credentials)) return next().then(() => answered(ctx));
    return counted(ctx, next, clientId);
  };
}

function invalidClient(ctx: Context): boolean {
  return ctx.status === 401 && (ctx.body as { error?: unknown } | undefined)?.error === 'invalid_client';
}

/** The client an `Authorization: Basic` header authenticates as; undefined without one. */
function basicClient(authorization: string): string | undefined {
  const basic = /^basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(authorization);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  // RFC 6749 §2.3.1: the id is form-urlencoded; a malformed one is counted as written
  const id = colon === -1 ? decoded : decoded.slice(0, colon);
  try {
    return decodeURIComponent(id.replace(/\+/g, ' '));
  } catch {
    return id;
  }
}

/** The client a form body authenticates as (`client_secret`, `client_assertion`); undefined when it presents no credentials. */
function bodyClient(params: URLSearchParams): string | undefined {
  if (params.has('client_secret')) return params.get('client_id') ?? '';
  const assertion = params.get('client_assertion');
  if (assertion !== null) return params.get('client_id') ?? assertionIssuer(assertion) ?? '';
  return undefined;
}

/** The `iss` (the client id) of a `private_key_jwt` assertion, read without verifying it. */
function assertionIssuer(jwt: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown };
    return typeof payload.iss === 'string' ? payload.iss : undefined;
  } catch {
    return undefined;
  }
}
