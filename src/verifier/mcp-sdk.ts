/**
 * `mcp-authz/verifier/mcp-sdk`: kept for servers written against earlier versions. The main
 * `mcp-authz/verifier` entry now finds an installed SDK by itself (src/verifier/sdk-errors.ts);
 * this entry binds the classes of the SDK it imports statically, so the SDK's
 * `requireBearerAuth({ verifier })` answers 401 `invalid_token` / 403 `insufficient_scope`
 * unchanged. This entry (alone) imports the SDK, an optional peer dependency.
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
