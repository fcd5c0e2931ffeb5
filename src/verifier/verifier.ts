/**
 * `createVerifier`: validates the options once, then wires discovery, the key set,
 * introspection and the revocation feed into `verifyAccessToken` / `authenticate`.
 */
import { ApprovalClient } from './approval-client.js';
import { ReplayCache } from './approval-token.js';
import { challengeFor } from './challenge.js';
import { Discovery } from './discovery.js';
import { VerifierError, isVerifierError } from './errors.js';
import { Introspector } from './introspection.js';
import { remoteKeys } from './jwks.js';
import { asSdkError, installedSdkErrors } from './sdk-errors.js';
import { protectedResourceMetadata, protectedResourceMetadataUrl } from './metadata.js';
import { feedKeys, RevocationFeed, type RevocableClaims } from './revocation.js';
import { union } from './scopes.js';
import { attachApprovals } from './tool-approvals.js';
import { VerifiedTokens } from './token-cache.js';
import { createToolCallReporter } from './tool-reports.js';
import type { AuthInfo, FetchLike, OAuthTokenVerifierLike, SdkErrorClasses, Verifier, VerifierOptions } from './types.js';
import { canonicalResourceUri, isSecureOrLoopback } from './uri.js';
import { consoleReporter } from './util.js';
import { bearerToken, checkIntrospection, checkTokenSyntax, looksLikeJws, toAuthInfo, verifyJwt } from './verify.js';

/** Algorithms accepted unless configured otherwise. */
export const DEFAULT_ALGORITHMS: readonly string[] = ['ES256', 'RS256', 'PS256', 'EdDSA'];

function fail(field: string, problem: string): never {
  throw new TypeError(`createVerifier: "${field}" ${problem}`);
}

function absoluteUrl(field: string, value: unknown): URL {
  if (typeof value !== 'string' || !URL.canParse(value)) fail(field, 'must be an absolute URL');
  return new URL(value);
}

function seconds(field: string, value: number | undefined, fallback: number, { positive }: { positive: boolean }): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (positive && value === 0)) fail(field, `must be a ${positive ? 'positive' : 'non-negative'} number of seconds`);
  return value;
}

/**
 * Creates a verifier for one MCP server (resource) and one authorization server (issuer).
 * Checks the options synchronously (a TypeError names the bad field), then starts following
 * the authorization server's revocation feed (unless `revocation: false`); keys are fetched at
 * the first verification (or {@link Verifier.ready}). Call {@link Verifier.close} on shutdown.
 *
 * @example
 * const verifier = createVerifier({ issuer: 'https://auth.example.com', resource: 'https://notes.example.com/mcp' });
 * const info = await verifier.verifyAccessToken(token); // AuthInfo, or throws VerifierError
 */
export function createVerifier(options: VerifierOptions): Verifier {
  if (typeof options !== 'object' || options === null) throw new TypeError('createVerifier: options are required');
  const issuerUrl = absoluteUrl('issuer', options.issuer);
  if (!isSecureOrLoopback(issuerUrl)) fail('issuer', 'must use https (http only on a loopback host)');
  if (issuerUrl.search || issuerUrl.hash) fail('issuer', 'must not have a query or fragment');
  const resourceUrl = absoluteUrl('resource', options.resource);
  if (resourceUrl.hash) fail('resource', 'must not have a fragment');
  const issuer = options.issuer;
  const resource = options.resource;
  const canonicalResource = canonicalResourceUri(resource);

  const algorithms = options.algorithms ?? [...DEFAULT_ALGORITHMS];
  if (!Array.isArray(algorithms) || algorithms.length === 0) fail('algorithms', 'must be a non-empty array');
  for (const alg of algorithms) {
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none' || /^HS/i.test(alg)) fail('algorithms', `must not contain ${JSON.stringify(alg)} (only asymmetric algorithms)`);
  }
  const clockTolerance = seconds('clockTolerance', options.clockTolerance, 5, { positive: false });
  if (options.jwksUri !== undefined) absoluteUrl('jwksUri', options.jwksUri);
  if (options.metadataUrl !== undefined) absoluteUrl('metadataUrl', options.metadataUrl);
  if (options.fetch !== undefined && typeof options.fetch !== 'function') fail('fetch', 'must be a function');
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));

  const introspection = options.introspection;
  if (introspection) {
    if (typeof introspection.clientId !== 'string' || !introspection.clientId) fail('introspection.clientId', 'is required');
    if (typeof introspection.clientSecret !== 'string' || !introspection.clientSecret) fail('introspection.clientSecret', 'is required');
    if (introspection.endpoint !== undefined) absoluteUrl('introspection.endpoint', introspection.endpoint);
  }
  // on unless explicitly turned off: a revoked token must not pass because an option was forgotten
  if (options.revocation !== undefined && options.revocation !== false && (typeof options.revocation !== 'object' || options.revocation === null)) {
    fail('revocation', 'must be an object of options, or false to accept revoked tokens until they expire');
  }
  const revocation = options.revocation === false ? undefined : (options.revocation ?? {});
  const onStale = revocation?.onStale ?? 'fail-closed';
  if (revocation) {
    if (revocation.required !== undefined && typeof revocation.required !== 'boolean') fail('revocation.required', 'must be a boolean');
    if (revocation.onError !== undefined && typeof revocation.onError !== 'function') fail('revocation.onError', 'must be a function');
    if (onStale !== 'fail-closed' && onStale !== 'introspect') fail('revocation.onStale', "must be 'fail-closed' or 'introspect'");
    if (onStale === 'introspect' && !introspection) fail('revocation.onStale', "is 'introspect', which needs the introspection option (clientId, clientSecret)");
    if (revocation.feedUrl !== undefined) absoluteUrl('revocation.feedUrl', revocation.feedUrl);
  }
  const staleAfter = seconds('revocation.staleAfter', revocation?.staleAfter, 30, { positive: true });
  const readyTimeout = seconds('revocation.readyTimeout', revocation?.readyTimeout, 2, { positive: false });
  const cacheTtl = seconds('introspection.cacheTtl', introspection?.cacheTtl, 30, { positive: false });
  if (options.resourceDocumentation !== undefined) absoluteUrl('resourceDocumentation', options.resourceDocumentation);
  if (options.cache !== undefined && options.cache !== false && (typeof options.cache !== 'object' || options.cache === null)) fail('cache', 'must be an object of options, or false');
  const cache = options.cache === false ? undefined : (options.cache ?? {});
  const cacheEntries = cache?.maxEntries ?? 10_000;
  if (cache && (!Number.isInteger(cacheEntries) || cacheEntries < 1)) fail('cache.maxEntries', 'must be a positive whole number');
  const cacheAge = seconds('cache.maxAge', cache?.maxAge, 300, { positive: true });
  const stepUpScopes = options.stepUpScopes ?? 'operation';
  if (stepUpScopes !== 'operation' && stepUpScopes !== 'operation-and-granted') fail('stepUpScopes', "must be 'operation' or 'operation-and-granted'");
  const scopeHierarchy = options.scopeHierarchy;
  const resourceServer = options.resourceServer;
  if (resourceServer !== undefined) {
    if (typeof resourceServer !== 'object' || resourceServer === null) fail('resourceServer', 'must be { clientId, clientSecret }');
    if (typeof resourceServer.clientId !== 'string' || !resourceServer.clientId) fail('resourceServer.clientId', 'is required');
    if (typeof resourceServer.clientSecret !== 'string' || !resourceServer.clientSecret) fail('resourceServer.clientSecret', 'is required');
  }
  if (options.toolApprovalsEndpoint !== undefined) absoluteUrl('toolApprovalsEndpoint', options.toolApprovalsEndpoint);

  const toolCalls = options.toolCalls ?? {};
  if (typeof toolCalls !== 'object' || toolCalls === null) fail('toolCalls', 'must be an object of options');
  if (toolCalls.report !== undefined && toolCalls.report !== false && toolCalls.report !== 'local' && toolCalls.report !== 'authorization-server') {
    fail('toolCalls.report', "must be 'authorization-server', 'local' or false");
  }
  if (toolCalls.report === 'authorization-server' && !resourceServer) fail('toolCalls.report', "is 'authorization-server', which needs the resourceServer option (clientId, clientSecret)");
  for (const name of ['onRecord', 'onError'] as const) if (toolCalls[name] !== undefined && typeof toolCalls[name] !== 'function') fail(`toolCalls.${name}`, 'must be a function');
  if (toolCalls.spoolDir !== undefined && (typeof toolCalls.spoolDir !== 'string' || !toolCalls.spoolDir)) fail('toolCalls.spoolDir', 'must be a directory path');
  if (toolCalls.batchSize !== undefined && (!Number.isInteger(toolCalls.batchSize) || toolCalls.batchSize < 1 || toolCalls.batchSize > 100)) fail('toolCalls.batchSize', 'must be a whole number from 1 to 100');
  if (toolCalls.flushIntervalMs !== undefined && (!Number.isFinite(toolCalls.flushIntervalMs) || toolCalls.flushIntervalMs < 10)) fail('toolCalls.flushIntervalMs', 'must be a number of milliseconds, at least 10');

  const discovery = new Discovery(issuer, fetchImpl, options.metadataUrl);
  const keys = remoteKeys({ jwksUri: options.jwksUri, fetch: fetchImpl, discovery });
  const fromMetadata = (field: 'introspection_endpoint') => async () => {
    const value = (await discovery.get())[field];
    if (!value) throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', { message: `the authorization server metadata has no ${field}` });
    return value;
  };
  const introspector = introspection
    ? new Introspector({
        clientId: introspection.clientId,
        clientSecret: introspection.clientSecret,
        endpoint: introspection.endpoint ? async () => introspection.endpoint! : fromMetadata('introspection_endpoint'),
        cacheTtl,
        fetch: fetchImpl,
      })
    : undefined;
  // one reporter for the verifier's problems (feed, tool approvals): the feed's onError, else the console
  const report = revocation?.onError ?? consoleReporter();
  const feed = revocation
    ? new RevocationFeed({
        feedUrl: revocation.feedUrl ? async () => revocation.feedUrl! : async () => (await discovery.get()).revocation_feed_endpoint,
        required: revocation.required ?? true,
        fetch: fetchImpl,
        staleAfterMs: staleAfter * 1000,
        report,
      })
    : undefined;
  const reporter = createToolCallReporter({
    issuer,
    resource,
    resourceServer,
    options: toolCalls,
    fetch: fetchImpl,
    endpointFromMetadata: async () => (await discovery.get()).tool_executions_endpoint,
    report: toolCalls.onError ?? (revocation && revocation.onError) ?? consoleReporter(),
  });
  // followed from the start: a missing feed is said at once, and the first request finds the backlog loaded
  feed?.start();
  const verified = cache ? new VerifiedTokens({ maxEntries: cacheEntries, maxAge: cacheAge, clockTolerance }) : undefined;
  /** the first verifications wait (once, bounded) for the feed's backlog */
  let feedWarmup: Promise<unknown> | undefined;

  const metadataUrl = protectedResourceMetadataUrl(resource);
  const challengeContext = { metadataUrl: metadataUrl.href, stepUpScopes };
  const jwtCheck = { issuer, canonicalResource, algorithms, clockTolerance, keys };
  const introspectionCheck = { issuer, canonicalResource, clockTolerance };

  const approvals = resourceServer
    ? {
        client: new ApprovalClient({
          clientId: resourceServer.clientId,
          clientSecret: resourceServer.clientSecret,
          endpoint: async () => {
            if (options.toolApprovalsEndpoint) return options.toolApprovalsEndpoint;
            // the metadata may name it; an AS that serves none still has it at the default path
            const metadata = await discovery.get().catch(() => undefined);
            return metadata?.tool_approvals_endpoint ?? `${issuer.endsWith('/') ? issuer.slice(0, -1) : issuer}/tool-approvals`;
          },
          fetch: fetchImpl,
        }),
        token: { issuer, canonicalResource, algorithms, clockTolerance, keys, replay: new ReplayCache() },
        report,
      }
    : undefined;

  async function verify(token: string): Promise<AuthInfo> {
    if (typeof token !== 'string') throw new VerifierError('ERR_TOKEN_MISSING');
    checkTokenSyntax(token);
    if (feed && !feed.ready) await (feedWarmup ??= feed.waitReady(readyTimeout * 1000));

    let claims: Record<string, unknown>;
    let introspected = false;
    if (looksLikeJws(token)) {
      const known = verified?.get(token);
      if (known) claims = known;
      else {
        const payload = await verifyJwt(token, jwtCheck);
        verified?.set(token, payload);
        claims = payload;
      }
    } else if (introspector) {
      const answer = await introspector.introspect(token);
      checkIntrospection(answer, introspectionCheck);
      claims = answer;
      introspected = true;
    } else {
      throw new VerifierError('ERR_TOKEN_MALFORMED', { message: 'the token is not a JWT and introspection is not configured' });
    }

    if (feed && !feed.absent) {
      if (feed.revoked.isRevoked(await feedKeys(claims as RevocableClaims, feed.revoked))) throw new VerifierError('ERR_TOKEN_REVOKED');
      // an introspected answer is at most `cacheTtl` old: it stands in for the feed
      if (!introspected && !feed.fresh) {
        if (onStale === 'fail-closed') {
          throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', {
            message: `the revocation feed is ${feed.ready ? 'stale' : 'not ready'}${feed.problem ? `: ${feed.problem}` : ''}`,
            retryAfter: Math.min(5, Math.ceil(staleAfter)),
          });
        }
        const answer = await introspector!.introspect(token);
        if (!answer.active) throw new VerifierError('ERR_TOKEN_REVOKED', { message: 'the authorization server reports the token inactive' });
      }
    }
    return toAuthInfo({ token, claims, issuer, resource: resourceUrl, scopeHierarchy });
  }

  function authorize(auth: AuthInfo, requiredScopes: readonly string[]): void {
    if (requiredScopes.every((scope) => auth.scopes.includes(scope))) return;
    const granted = auth.extra?.tokenScopes;
    throw new VerifierError('ERR_INSUFFICIENT_SCOPE', {
      requiredScopes: union([requiredScopes]),
      grantedScopes: Array.isArray(granted) ? (granted as string[]) : auth.scopes,
    });
  }

  async function authenticate(authorization: string | null | undefined, { requiredScopes = [] }: { requiredScopes?: readonly string[] } = {}): Promise<AuthInfo> {
    let auth: AuthInfo;
    try {
      auth = await verify(bearerToken(authorization));
    } catch (err) {
      // a 401 challenge names the scopes every request needs, so the client asks for them
      if (requiredScopes.length && isVerifierError(err) && err.status === 401) {
        throw new VerifierError(err.code, { message: err.message, cause: err.cause, challengeScopes: union([requiredScopes]) });
      }
      throw err;
    }
    if (requiredScopes.length) authorize(auth, requiredScopes);
    return auth;
  }

  /** The SDK's `OAuthTokenVerifier`: refusals are instances of the SDK's classes where it is installed. */
  async function verifyAccessToken(token: string): Promise<AuthInfo> {
    try {
      return await verify(token);
    } catch (err) {
      if (!isVerifierError(err)) throw err;
      const sdk = await installedSdkErrors();
      throw sdk ? asSdkError(err, sdk) : err;
    }
  }

  function forSdk(sdk: SdkErrorClasses): OAuthTokenVerifierLike {
    if (!sdk || typeof sdk.InvalidTokenError !== 'function' || typeof sdk.InsufficientScopeError !== 'function' || typeof sdk.ServerError !== 'function') {
      throw new TypeError('forSdk: pass the SDK error classes InvalidTokenError, InsufficientScopeError and ServerError');
    }
    return {
      async verifyAccessToken(token: string): Promise<AuthInfo> {
        try {
          return await verify(token);
        } catch (err) {
          throw isVerifierError(err) ? asSdkError(err, sdk) : err;
        }
      },
    };
  }

  async function ready(): Promise<void> {
    if (!options.jwksUri || (introspection && !introspection.endpoint) || (revocation && !revocation.feedUrl)) await discovery.get();
    if (feed && !(await feed.waitReady(Math.max(readyTimeout, 10) * 1000))) {
      throw new VerifierError('ERR_AUTHZ_UNAVAILABLE', { message: feed.problem ?? 'the revocation feed did not send its backlog in time' });
    }
  }

  const verifier: Verifier = {
    issuer,
    resource,
    metadataPath: metadataUrl.pathname,
    metadataUrl: metadataUrl.href,
    verifyAccessToken,
    authenticate,
    authorize,
    challenge: (error?: unknown) => challengeFor(error, challengeContext),
    protectedResourceMetadata: () =>
      protectedResourceMetadata({
        resource,
        issuer,
        scopesSupported: options.scopesSupported,
        resourceName: options.resourceName,
        resourceDocumentation: options.resourceDocumentation,
      }),
    forSdk,
    ready,
    revocationStatus: () => feed?.status(),
    toolCalls: reporter,
    close: async () => {
      await Promise.all([feed?.close(), reporter.close()]);
    },
  };
  if (approvals) attachApprovals(verifier, approvals);
  return verifier;
}
