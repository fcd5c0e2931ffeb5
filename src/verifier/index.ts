/**
 * `mcp-authz/verifier`: what an MCP server (an OAuth resource server) imports to accept
 * access tokens from an mcp-authz (or any RFC 8414 / RFC 9068) authorization server.
 *
 * - {@link createVerifier} → a {@link Verifier}: `verifyAccessToken` (the SDK's
 *   `OAuthTokenVerifier`), `authenticate(header, { requiredScopes })`, `challenge(err)`
 *   (RFC 6750 `WWW-Authenticate`), `protectedResourceMetadata()` (RFC 9728), `forSdk()`.
 *   The revocation feed is followed from creation on (`revocation: false` opts out), and
 *   `verifyAccessToken` speaks the MCP SDK's error classes where the SDK is installed.
 * - Adapters: {@link nodeMiddleware} / {@link nodeMetadataHandler} (node:http, Express),
 *   {@link koaMiddleware} / {@link koaMetadataMiddleware}, {@link authenticateRequest} /
 *   {@link metadataResponse} (fetch `Request`/`Response`).
 * - Per-tool scopes: `toolScopes` / `resourceScopes` adapter options, {@link filterTools},
 *   {@link allowedTool}; `Mcp-Method` / `Mcp-Name` headers checked against the body, or read
 *   alone (`scopesFrom: 'headers'`, {@link requiredScopesFromHeaders}); {@link privateToolLists}
 *   marks per-token `tools/list` results `cacheScope: "private"`.
 * - Tools a person approves call by call: `toolApprovals` / `approvalAnswer` adapter options
 *   with the verifier's `resourceServer` credentials; the approval lands on `auth.extra.approval`.
 * - Tool call reports: every `tools/call` let through is recorded (`toolCalls` option): sent
 *   to the authorization server's audit log when `resourceServer` credentials are given (with
 *   a spool file for outages), else one JSON line per call on standard error.
 *
 * Runtime-neutral: depends on `jose` and `zod` and web-standard globals only.
 *
 * @example
 * // createVerifier, nodeMiddleware and nodeMetadataHandler come from the mcp-authz/verifier subpath
 * const verifier = createVerifier({ issuer: 'https://auth.example.com', resource: 'https://notes.example.com/mcp' });
 * app.use(nodeMetadataHandler(verifier));
 * app.post('/mcp', nodeMiddleware(verifier, { toolScopes: { add_note: ['notes:write'] } }), (req, res) =>
 *   transport.handleRequest(req, res, req.body));
 *
 * @module
 */
export { createVerifier, DEFAULT_ALGORITHMS } from './verifier.js';
export { VerifierError, isVerifierError } from './errors.js';
export type { VerifierErrorCode, OAuthErrorCode } from './errors.js';
export type {
  AuthInfo,
  AuthenticateOptions,
  FetchLike,
  IntrospectionOptions,
  OAuthTokenVerifierLike,
  ResourceServerCredentials,
  RevocationOptions,
  SdkErrorClasses,
  ToolCallOptions,
  Verifier,
  VerifierOptions,
} from './types.js';
export type { Challenge } from './challenge.js';
export { protectedResourceMetadataUrl } from './metadata.js';
export type { ProtectedResourceMetadata } from './metadata.js';
export type { RevocationStatus } from './revocation.js';
export { allowedTool, filterTools, scopesForTool, scopesForResource, expandScopes } from './scopes.js';
export type { ToolScopes, ResourceScopeRule, OperationScopeOptions } from './scopes.js';
export { HEADER_MISMATCH, headerMismatch, operationFromHeaders, requiredScopesFromHeaders, decodeHeaderValue } from './mcp-headers.js';
export type { McpHeaders, HeaderOperation } from './mcp-headers.js';
export { privateToolLists } from './cache-scope.js';
export type { TransportLike } from './cache-scope.js';
export type { AdapterOptions, CorsOptions } from './http.js';
export { declaresUrlElicitation, MAX_SUMMARY } from './tool-approvals.js';
export type { ToolApproval, ToolApprovals, ApprovalAnswerMode, ToolCallApproval } from './tool-approvals.js';
export { APPROVAL_ID_META, DENIAL_META, URL_ELICITATION_REQUIRED, APPROVAL_UNAVAILABLE } from './approval-answers.js';
export type { ApprovalDenial, ApprovalClassification } from './approval-answers.js';
export { APPROVAL_TOKEN_TYPE, TOOL_CALL_DETAILS_TYPE } from './approval-token.js';
export type { ToolArguments } from './tool-arguments.js';
export { nodeMiddleware, nodeMetadataHandler } from './node.js';
export type { NodeRequestLike, NodeResponseLike, NodeNext } from './node.js';
export { koaMiddleware, koaMetadataMiddleware } from './koa.js';
export type { KoaContextLike } from './koa.js';
export { authenticateRequest, metadataResponse, responseCorsHeaders } from './fetch.js';
export type { AuthenticatedRequest } from './fetch.js';
export type { ToolCallRecord, ToolCallReporter } from './tool-reports.js';
export { canonicalResourceUri } from './uri.js';
