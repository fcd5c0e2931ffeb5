/**
 * Statically configured clients → oidc-provider client metadata (RFC 7591 names).
 * Our own policy keys (`resources`, `scope` as an allow-list) stay in the ResourceRegistry.
 */
import type { ClientMetadata } from 'oidc-provider';
import { effectiveAuthMethod, type ClientConfig } from '../config/schema.js';

export function staticClientMetadata(client: ClientConfig): ClientMetadata {
  const method = effectiveAuthMethod(client);
  const interactive = client.grant_types.includes('authorization_code');
  const metadata: ClientMetadata = {
    client_id: client.client_id,
    grant_types: [...client.grant_types],
    response_types: interactive ? ['code'] : [],
    redirect_uris: [...client.redirect_uris],
    post_logout_redirect_uris: [...client.post_logout_redirect_uris],
    token_endpoint_auth_method: method,
  };
  if (client.client_secret) metadata.client_secret = client.client_secret;
  if (client.client_name) metadata.client_name = client.client_name;
  if (client.jwks) metadata.jwks = { keys: client.jwks.keys as never };
  if (client.jwks_uri) metadata.jwks_uri = client.jwks_uri;
  if (client.application_type) metadata.application_type = client.application_type;
  return metadata;
}
