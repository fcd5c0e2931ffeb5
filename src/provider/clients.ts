/**
 * Statically configured clients → oidc-provider client metadata (RFC 7591 names).
 * A client with only loopback redirect URIs and no application_type is treated as native.
 * Our own policy keys (`resources`, `scope` as an allow-list) stay in the ResourceRegistry.
 */
import type { ClientMetadata } from 'oidc-provider';
import { effectiveAuthMethod, type ClientConfig } from '../config/schema.js';
import { isLoopbackHost } from '../config/uri.js';

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
  const applicationType = client.application_type ?? (interactive && onlyLoopback(client.redirect_uris) ? 'native' : undefined);
  if (applicationType) metadata.application_type = applicationType;
  return metadata;
}

/**
 * Apps on the person's machine redirect to a loopback address on a port chosen at run time
 * (RFC 8252 §7.3): such a client, when its type is not given, is a native one, so any port
 * of its registered loopback redirect URIs is accepted.
 */
function onlyLoopback(uris: readonly string[]): boolean {
  return uris.length > 0 && uris.every((uri) => {
    const url = URL.parse(uri);
    return url?.protocol === 'http:' && isLoopbackHost(url.hostname);
  });
}
