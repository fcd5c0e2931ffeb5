/**
 * Public types of the verifier: its options, the `AuthInfo` it returns (structurally the
 * `@modelcontextprotocol/sdk` type) and the `Verifier` object.
 */
import type { Challenge } from './challenge.js';
import type { ProtectedResourceMetadata } from './metadata.js';
import type { RevocationStatus } from './revocation.js';
import type { ToolCallRecord, ToolCallReporter } from './tool-reports.js';

/** A `fetch`-compatible function (injectable for tests, proxies, or egress control). */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * What a verified access token grants. Structurally identical to the SDK's
 * `AuthInfo` (`@modelcontextprotocol/sdk/server/auth/types.js`), with `expiresAt` always set.
 */
export interface AuthInfo {
  /** the access token itself (needed by the SDK; never log it) */
  token: string;
  /** the OAuth client the token was issued to (`client_id` claim, else `azp`) */
  clientId: string;
  /** the token's scopes, plus the scopes they imply under {@link VerifierOptions.scopeHierarchy} */
  scopes: string[];
  /** expiry, seconds since the epoch */
  expiresAt: number;
  /** this server's resource identifier (the configured `resource`) the token is for */
  resource?: URL;
  /**
   * `subject` (sub), `grantId` (grant_id), `jti`, `issuer`, `tokenScopes` (as issued) and
   * `claims` (all verified claims); for a `tools/call` a person approved (adapter option
   * `toolApprovals`), `approval: { id, approvedBy: 'person' | 'policy' }`.
   */
  extra?: Record<string, unknown>;
}

/** Options of {@link createVerifier}. */
export interface VerifierOptions {
  /** The authorization server's issuer identifier; `iss` must equal it exactly. https, or http on loopback. */
  issuer: string;
  /**
   * This MCP server's canonical URI (e.g. `https://notes.example.com/mcp`). Tokens whose
   * `aud` does not contain it (compared canonically: case of scheme/host, default port and a
   * trailing slash aside) are refused. Published verbatim as the metadata `resource`.
   */
  resource: string;
  /** JWS algorithms accepted; default `['ES256', 'RS256', 'PS256', 'EdDSA']`. `none` and `HS*` are refused. */
  algorithms?: string[];
  /** Leeway for `exp` / `nbf`, seconds; default 5. */
  clockTolerance?: number;
  /** JWKS URL; default: `jwks_uri` from the issuer's RFC 8414 metadata. */
  jwksUri?: string;
  /**
   * Authorization server metadata URL; default the RFC 8414 path-inserted
   * `/.well-known/oauth-authorization-server` of the issuer, then OpenID Connect discovery.
   * Its `issuer` must equal {@link VerifierOptions.issuer} byte for byte.
   */
  metadataUrl?: string;
  /** `fetch` used for metadata, JWKS, introspection and the revocation feed; default the global one. */
  fetch?: FetchLike;
  /** RFC 7662 introspection for opaque (non-JWT) tokens and for `revocation.onStale: 'introspect'`. */
  introspection?: IntrospectionOptions;
  /**
   * The authorization server's revocation feed (Server-Sent Events), followed from creation on
   * so that a revoked token, grant or person is refused within a second. On by default (`{}`);
   * `false` turns it off, and then a revoked token is accepted until it expires. Call
   * {@link Verifier.close} on shutdown: an open feed connection keeps a process running.
   */
  revocation?: RevocationOptions | false;
  /**
   * Verified JWT access tokens remembered (by a SHA-256 of the token) so that a token sent again
   * costs a map lookup, not a signature check: `{ maxEntries? (10 000), maxAge? (300 s) }`, on by
   * default; `false` checks every signature every time. Expiry, revocation and the feed's
   * freshness are checked on every request either way. Needs node:crypto (Node, Bun, Deno).
   */
  cache?: { maxEntries?: number; maxAge?: number } | false;
  /** `scopes_supported` of the protected resource metadata: the minimal set a client should ask for. */
  scopesSupported?: string[];
  /** `resource_name` of the protected resource metadata. */
  resourceName?: string;
  /** `resource_documentation` of the protected resource metadata (a URL). */
  resourceDocumentation?: string;
  /**
   * Broader scopes and the narrower ones they imply (MCP: servers MUST honour scope
   * hierarchies), e.g. `{ 'notes:admin': ['notes:write'], 'notes:write': ['notes:read'] }`.
   * Implication is transitive; {@link AuthInfo.scopes} includes implied scopes.
   */
  scopeHierarchy?: Record<string, string[]>;
  /**
   * What the `scope` of a 403 `insufficient_scope` challenge lists: `'operation'` (default,
   * MCP 2026-07-28) names every scope the refused operation needs; `'operation-and-granted'`
   * adds the scopes the token already has (MCP 2025-11-25's recommendation, for clients such as
   * `@modelcontextprotocol/sdk` 1.x that replace rather than extend their scope on step-up).
   */
  stepUpScopes?: 'operation' | 'operation-and-granted';
  /**
   * This MCP server's own client at the authorization server (a client listed in its
   * resource's `resourceServerClients`, HTTP Basic): what it asks for tool-call approvals
   * (`toolApprovals`, where it is required) and reports tool calls as.
   */
  resourceServer?: ResourceServerCredentials;
  /**
   * The AS's tool approval endpoint; default the metadata's `tool_approvals_endpoint`, else
   * `${issuer}/tool-approvals`.
   */
  toolApprovalsEndpoint?: string;
  /** Reports of the `tools/call` requests the adapters let through (see {@link ToolCallOptions}). */
  toolCalls?: ToolCallOptions;
}

/** Client credentials of an MCP server at the authorization server (`client_secret_basic`). */
export interface ResourceServerCredentials {
  clientId: string;
  clientSecret: string;
}

/**
 * Where tool call reports go. Each `tools/call` an adapter lets through becomes a
 * `ToolCallRecord` (tool, person, client, grant, token id, approval, outcome, duration, the
 * arguments' digest and a redacted copy) once its response is finished.
 */
export interface ToolCallOptions {
  /**
   * `'authorization-server'` (default when `resourceServer` is set): sent in batches to the
   * AS's `tool_executions_endpoint` (its audit log); what cannot be sent waits in a spool file
   * and is retried. `'local'` (default otherwise): to `onRecord` only. `false`: not recorded.
   */
  report?: 'authorization-server' | 'local' | false;
  /** Called with each record (in `'local'` mode default: one JSON line on standard error). */
  onRecord?: (record: ToolCallRecord) => void;
  /** Directory of the spool file; default `${os.tmpdir()}/mcp-authz-spool/<first 16 hex of sha256(resource)>` (Node only). */
  spoolDir?: string;
  /** Records per request, at most 100; default 50. */
  batchSize?: number;
  /** How often queued records are sent, milliseconds; default 1000 (sooner when a batch is full). */
  flushIntervalMs?: number;
  /** Problems sending reports, and each record the AS refused (by id); default `revocation.onError`, else the console. */
  onError?: (error: Error) => void;
}

export interface IntrospectionOptions {
  /** client credentials of this resource server at the AS (HTTP Basic) */
  clientId: string;
  clientSecret: string;
  /** default: `introspection_endpoint` from the AS metadata */
  endpoint?: string;
  /** seconds an answer is reused (keyed by a SHA-256 of the token), default 30, never beyond the token's `exp` */
  cacheTtl?: number;
}

export interface RevocationOptions {
  /** default: `revocation_feed_endpoint` from the AS metadata */
  feedUrl?: string;
  /**
   * When the AS metadata advertises no `revocation_feed_endpoint` (and no `feedUrl` is given):
   * `true` (default) refuses every token with 503 and says why at start (`onError`, `ready()`);
   * `false` warns once and verifies without revocation (for authorization servers without a feed).
   */
  required?: boolean;
  /** seconds without any event or heartbeat after which the feed counts as stale; default 30 */
  staleAfter?: number;
  /**
   * While the feed is stale: `'fail-closed'` (default) refuses every request with 503 +
   * `Retry-After`; `'introspect'` asks the AS about each token instead (needs `introspection`).
   */
  onStale?: 'fail-closed' | 'introspect';
  /** seconds the first verifications wait for the feed's `ready` (its backlog); default 2 */
  readyTimeout?: number;
  /**
   * Called with feed problems and warnings (for logs); the feed reconnects by itself. Default:
   * `console.warn`, each distinct message at most once a minute.
   */
  onError?: (error: Error) => void;
}

/** Options of {@link Verifier.authenticate}. */
export interface AuthenticateOptions {
  /** scopes the request needs; missing ones → ERR_INSUFFICIENT_SCOPE (403) */
  requiredScopes?: readonly string[];
}

/**
 * The SDK error classes {@link Verifier.forSdk} maps to: pass the SDK's own (the namespace of its
 * `@modelcontextprotocol/sdk/server/auth/errors.js` module has all three).
 */
export interface SdkErrorClasses {
  InvalidTokenError: new (message: string) => Error;
  InsufficientScopeError: new (message: string) => Error;
  ServerError: new (message: string) => Error;
}

/** The SDK's `OAuthTokenVerifier` shape. */
export interface OAuthTokenVerifierLike {
  verifyAccessToken(token: string): Promise<AuthInfo>;
}

/** A configured verifier. Create with {@link createVerifier}; call {@link Verifier.close} on shutdown when following a revocation feed. */
export interface Verifier {
  readonly issuer: string;
  /** the configured resource, verbatim */
  readonly resource: string;
  /** path of the protected resource metadata, e.g. `/.well-known/oauth-protected-resource/mcp` */
  readonly metadataPath: string;
  /** absolute URL of the protected resource metadata (the `resource_metadata` challenge parameter) */
  readonly metadataUrl: string;
  /**
   * Verifies an access token (JWT, or opaque via introspection), including revocation.
   * Resolves to {@link AuthInfo}; rejects with `VerifierError`. It is the SDK's
   * `OAuthTokenVerifier.verifyAccessToken`: where `@modelcontextprotocol/sdk` is installed, the
   * error is also an instance of the SDK's `InvalidTokenError` (401), `InsufficientScopeError`
   * (403) or `ServerError` (authorization server unavailable), so the SDK's unchanged
   * `requireBearerAuth({ verifier })` answers with the right challenge.
   */
  verifyAccessToken(token: string): Promise<AuthInfo>;
  /**
   * The core every adapter uses: parses an `Authorization` header value (Bearer only),
   * verifies the token and checks `requiredScopes`. Rejects with `VerifierError`
   * (ERR_TOKEN_MISSING when there is no Bearer credential).
   */
  authenticate(authorization: string | null | undefined, options?: AuthenticateOptions): Promise<AuthInfo>;
  /** Throws ERR_INSUFFICIENT_SCOPE unless `auth.scopes` has every scope in `requiredScopes`. */
  authorize(auth: AuthInfo, requiredScopes: readonly string[]): void;
  /** The HTTP answer for a refused request (401/403/503, `WWW-Authenticate`, JSON body); no argument = no token sent. */
  challenge(error?: unknown): Challenge;
  /** The RFC 9728 document to serve at {@link Verifier.metadataPath}. */
  protectedResourceMetadata(): ProtectedResourceMetadata;
  /**
   * An `OAuthTokenVerifier` whose refusals are instances of the given SDK classes: for a
   * copy of the SDK other than the one `verifyAccessToken` finds by itself (a bundled one, say).
   */
  forSdk(errors: SdkErrorClasses): OAuthTokenVerifierLike;
  /** Resolves once discovery is done and (with `revocation`) the feed has sent its backlog; rejects on failure. Optional warm-up. */
  ready(): Promise<void>;
  /** Revocation feed state (undefined with `revocation: false`), e.g. for a health check. */
  revocationStatus(): RevocationStatus | undefined;
  /** Tool call reports (`toolCalls` option): `flush()` sends what is queued now (tests, shutdown). */
  readonly toolCalls: ToolCallReporter;
  /** Stops the revocation feed, sends the queued tool call reports (bounded wait; the rest is spooled). Idempotent. */
  close(): Promise<void>;
}
