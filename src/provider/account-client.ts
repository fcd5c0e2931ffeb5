/**
 * The built-in client of the account pages (src/interactions/account-sign-in.ts): a public,
 * first-party client whose only redirect URI is this server's `/account/signed-in`, with PKCE
 * and scope `openid`, and no MCP server (the resource registry gives it none). It exists so a
 * person can sign in on an account page through the ordinary sign-in (password, connections,
 * second factor, limits, audit) and come back with oidc-provider's browser session.
 *
 * It is never asked for consent and never given a stored grant: its sign-ins get an unsaved
 * Grant holding `openid` (the engine needs one to finish the request), so nothing appears among
 * the person's connected apps, and the code it is sent refers to a grant that does not exist —
 * the token endpoint refuses it (`invalid_grant`) even before PKCE, whose verifier is never kept.
 * It is not in the operator's client list (that id is refused there: src/config/schema.ts).
 */
import { randomBytes } from 'node:crypto';
import type { ClientMetadata, KoaContextWithOIDC } from 'oidc-provider';
import { ACCOUNT_SIGNED_IN_PATH } from '../http/account-paths.js';
import { ACCOUNT_CLIENT_ID } from '../config/schema.js';

export { ACCOUNT_CLIENT_ID };
/** as the sign-in page names it: "Sign in to continue to your account pages" */
export const ACCOUNT_CLIENT_NAME = 'your account pages';

export function isAccountClient(clientId: unknown): boolean {
  return clientId === ACCOUNT_CLIENT_ID;
}

/** `${issuer}/account/signed-in` */
export function accountRedirectUri(issuer: string): string {
  const url = new URL(issuer);
  return `${url.origin}${url.pathname.replace(/\/$/, '')}${ACCOUNT_SIGNED_IN_PATH}`;
}

export function accountClientMetadata(issuer: string): ClientMetadata {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_name: ACCOUNT_CLIENT_NAME,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [accountRedirectUri(issuer)],
    token_endpoint_auth_method: 'none',
    // the engine refuses any other OpenID scope for it (invalid_scope)
    scope: 'openid',
  };
}

/**
 * For oidc-provider's `loadExistingGrant`: the account client's sign-in is allowed `openid` by a
 * Grant that is never saved (see above); undefined for every other client.
 */
export function accountClientGrant(ctx: KoaContextWithOIDC) {
  const { client, account, provider } = ctx.oidc;
  if (!client || !account || !isAccountClient(client.clientId)) return undefined;
  // an id of its own (the session and the code name it), though no grant is ever stored under it
  // (the engine's model takes `jti` like any stored field; the types leave it out)
  const grant = new provider.Grant({ jti: randomBytes(24).toString('base64url'), accountId: account.accountId, clientId: client.clientId } as { accountId: string; clientId: string });
  grant.addOIDCScope('openid');
  return grant;
}
