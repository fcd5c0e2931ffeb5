/**
 * `mcp-authz/verifier/mcp-sdk`: the verifier for servers built on `@modelcontextprotocol/sdk`.
 * Its `verifyAccessToken` throws the SDK's own error classes, so the SDK's
 * `requireBearerAuth({ verifier })` answers 401 `invalid_token` / 403 `insufficient_scope`
 * unchanged. This entry (alone) imports the SDK, an optional peer dependency; the main
 * `mcp-authz/verifier` entry stays free of it.
 *
 * @example
 * import { createVerifier } from 'mcp-authz/verifier/mcp-sdk';
 * import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
 * const verifier = createVerifier({ issuer: 'https://auth.example.com', resource: 'https://notes.example.com/mcp' });
 * app.post('/mcp', requireBearerAuth({ verifier, resourceMetadataUrl: verifier.metadataUrl }), handler);
 *
 * @module
 */
import { InsufficientScopeError, InvalidTokenError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { createVerifier as createBaseVerifier } from './verifier.js';
import type { Verifier, VerifierOptions } from './types.js';

/** A {@link Verifier} whose `verifyAccessToken` speaks the SDK's error classes. */
export function createVerifier(options: VerifierOptions): Verifier {
  const verifier = createBaseVerifier(options);
  const { verifyAccessToken } = verifier.forSdk({ InvalidTokenError, InsufficientScopeError, ServerError });
  return { ...verifier, verifyAccessToken };
}

export type { AuthInfo, Verifier, VerifierOptions } from './types.js';
