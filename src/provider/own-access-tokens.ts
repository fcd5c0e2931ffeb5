/**
 * Our own JWT access tokens, checked as introspection checks them (RFC 7662) — shared by the
 * introspection endpoint (./jwt-access-tokens.ts) and the endpoints MCP servers call with a
 * token a client presented to them (src/tool-approvals): signed by one of our keys, typed
 * `at+jwt`, issued by us; active unless revoked (the revocation log), or, for a person's
 * token, its grant or account is gone.
 */
import { jwtVerify, type JWTPayload } from 'jose';
import type { Store } from '../../adapters/contract.js';
import type { ProviderHolder } from './holder.js';
import { claimKeys } from '../revocation/feed-events.js';
import type { RevocationHub } from '../revocation/hub.js';
import { ACCESS_TOKEN_ALG } from './configuration.js';

export interface AccessTokenClaims extends JWTPayload {
  jti: string;
  exp: number;
  client_id: string;
  grant_id?: string;
  scope?: string;
  /** how the person signed in (RFC 9068 §2.2.1) */
  acr?: string;
  amr?: string[];
  auth_time?: number;
}

export interface OwnAccessTokens {
  /** The claims of a token we signed that has not expired; undefined for anything else. */
  verify(token: string): Promise<AccessTokenClaims | undefined>;
  /** Whether verified claims are still active: not revoked, grant and account still there. */
  isActive(claims: AccessTokenClaims): Promise<boolean>;
}

export function ownAccessTokens(deps: { holder: ProviderHolder; hub: RevocationHub; store: Store; issuer: string }): OwnAccessTokens {
  const { holder, hub, store, issuer } = deps;
  return {
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, holder.verificationKeys, { issuer, typ: 'at+jwt', algorithms: [ACCESS_TOKEN_ALG] });
        const { jti, exp, client_id: clientId } = payload;
        if (typeof jti !== 'string' || typeof exp !== 'number' || typeof clientId !== 'string') return undefined;
        return payload as AccessTokenClaims;
      } catch {
        return undefined;
      }
    },
    async isActive(claims) {
      if (hub.revoked.isRevoked(claimKeys(claims))) return false;
      if (claims.grant_id) {
        // a person's token: its grant and its account must still exist
        if (!(await store.model('Grant').find(claims.grant_id))) return false;
        if (typeof claims.sub !== 'string' || !(await store.accounts.findById(claims.sub))) return false;
      }
      return true;
    },
  };
}
