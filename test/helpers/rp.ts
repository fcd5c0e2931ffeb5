/**
 * openid-client configurations (a real, independent OAuth client library) for our test
 * clients, plus small JWT helpers.
 */
import * as client from 'openid-client';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Site } from './server.js';
import { SECRET } from './fixtures.js';

const insecure = { execute: [client.allowInsecureRequests] };

/** A public client (token_endpoint_auth_method none). */
export function publicClient(t: Site, clientId: string): Promise<client.Configuration> {
  return client.discovery(new URL(t.issuer), clientId, undefined, client.None(), insecure);
}

export function basicClient(t: Site, clientId: string, secret = SECRET): Promise<client.Configuration> {
  return client.discovery(new URL(t.issuer), clientId, secret, client.ClientSecretBasic(secret), insecure);
}

export function postClient(t: Site, clientId: string, secret = SECRET): Promise<client.Configuration> {
  return client.discovery(new URL(t.issuer), clientId, secret, client.ClientSecretPost(secret), insecure);
}

export function jwt(token: string) {
  return { header: decodeProtectedHeader(token), payload: decodeJwt(token) };
}

export { client };
