/**
 * The approval token: what an MCP server accepts as the approval of exactly one tool call. A
 * JWT typed `mcp-approval+jwt`, signed with the key our access tokens are signed with now
 * (ES256, published in the JWKS), so a verifier that checks our access tokens needs nothing
 * more to check it. The call it approves is an RFC 9396 authorization detail
 * (`mcp_tool_call`: the MCP server, tool, arguments digest and the summary the person saw);
 * `jti` is the approval id, which a verifier accepts once.
 */
import { importJWK, SignJWT } from 'jose';
import type { ToolApprovalRecord } from '../../adapters/contract.js';
import { ACCESS_TOKEN_ALG } from '../provider/configuration.js';
import type { ProviderHolder } from '../provider/holder.js';

export const APPROVAL_TOKEN_TYPE = 'mcp-approval+jwt';
export const TOOL_CALL_DETAIL_TYPE = 'mcp_tool_call';

export interface ApprovalTokenInput {
  record: ToolApprovalRecord;
  /** the access token's `sub`, if it has one */
  subject: string | undefined;
  issuer: string;
  /** lifetime, in seconds */
  ttl: number;
  now: number;
}

export async function signApprovalToken(holder: ProviderHolder, input: ApprovalTokenInput): Promise<string> {
  const jwk = holder.signingKey(ACCESS_TOKEN_ALG);
  // the server never runs without its keys (src/keys): a missing one is a bug, not a bad request
  if (!jwk || typeof jwk.kid !== 'string') throw new Error(`no ${ACCESS_TOKEN_ALG} signing key`);
  const { record, subject, issuer, ttl, now } = input;
  const iat = Math.floor(now / 1000);
  const token = new SignJWT({
    client_id: record.clientId,
    ...(record.grantId === undefined ? {} : { grant_id: record.grantId }),
    approved_by: record.decidedBy ?? 'person',
    authorization_details: [
      {
        type: TOOL_CALL_DETAIL_TYPE,
        locations: [record.resource],
        tool: record.tool,
        arguments_digest: record.argumentsDigest,
        summary: record.summary,
      },
    ],
  })
    .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: jwk.kid, typ: APPROVAL_TOKEN_TYPE })
    .setIssuer(issuer)
    .setAudience(record.resource)
    .setJti(record.id)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttl);
  // the access token's subject, as the verifier compares them (absent when it has none)
  if (subject !== undefined) token.setSubject(subject);
  return token.sign(await importJWK(jwk, ACCESS_TOKEN_ALG));
}
