/**
 * Whole flows used by several test files: a person signs in and consents, the client
 * exchanges the code (openid-client all along).
 */
import { Browser, authorize } from './browser-driver.js';
import { NOTES, PASSWORD, REDIRECT } from './fixtures.js';
import { basicClient, client, publicClient } from './rp.js';
import type { TestServer } from './server.js';

export interface UserTokens {
  config: client.Configuration;
  tokens: { access_token: string; refresh_token?: string | undefined; scope?: string | undefined };
}

export async function userTokens(t: TestServer, clientId: 'web-app' | 'confidential-web', scope = 'notes:read', resource = NOTES): Promise<UserTokens> {
  const config = clientId === 'web-app' ? await publicClient(t, clientId) : await basicClient(t, clientId);
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    scope,
    resource,
  });
  const callback = await authorize(new Browser(), url.href, REDIRECT, PASSWORD);
  return { config, tokens: await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier }, { resource }) };
}
