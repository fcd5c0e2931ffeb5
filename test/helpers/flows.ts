/**
 * Whole flows and their first steps, shared by the test files: an authorization request
 * built by openid-client, a person signing in and consenting, the device grant's start and
 * polls.
 */
import assert from 'node:assert/strict';
import { Browser, authorize, findForm, type Page } from './browser-driver.js';
import { NOTES, PASSWORD, REDIRECT, SECRET } from './fixtures.js';
import { basicClient, client, publicClient } from './rp.js';
import type { Site } from './server.js';

/** Fixture clients that authenticate with a secret; every other one is public. */
const CONFIDENTIAL = new Set(['confidential-web']);

export interface AuthorizationRequest {
  config: client.Configuration;
  verifier: string;
  state: string;
  url: string;
}

/** An authorization URL (PKCE S256, state, REDIRECT) built by openid-client, and what redeems its code. */
export async function authorizationRequest(t: Site, clientId: string, params: Record<string, string>): Promise<AuthorizationRequest> {
  const config = CONFIDENTIAL.has(clientId) ? await basicClient(t, clientId) : await publicClient(t, clientId);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  });
  return { config, verifier, state, url: url.href };
}

export interface UserTokens {
  config: client.Configuration;
  tokens: { access_token: string; refresh_token?: string | undefined; scope?: string | undefined };
}

/** alice signs in and consents; the client redeems the code. */
export async function userTokens(t: Site, clientId: 'web-app' | 'confidential-web', scope = 'notes:read', resource = NOTES): Promise<UserTokens> {
  const { config, verifier, state, url } = await authorizationRequest(t, clientId, { scope, resource });
  const callback = await authorize(new Browser(), url, REDIRECT, PASSWORD);
  return { config, tokens: await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource }) };
}

/** A client credentials token (notes:read at the notes server) of a fixture machine client, `nightly-report` by default. */
export async function serviceToken(site: Site, clientId = 'nightly-report'): Promise<string> {
  const res = await fetch(site.url('/token'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { access_token: string }).access_token;
}

export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

/** POST /device/auth for the fixture's device client `tv-app`. */
export async function startDevice(t: Site, body: Record<string, string> = { scope: 'notes:read notes:write', resource: NOTES }): Promise<DeviceAuthorization> {
  const res = await fetch(t.url('/device/auth'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'tv-app', ...body }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as DeviceAuthorization;
}

/** One poll of the token endpoint with a device code. */
export async function pollDevice(t: Site, deviceCode: string): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(t.url('/token'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode, client_id: 'tv-app' }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

/**
 * A person approves a device in `browser`: (a wrong user code first, if asked,) the user code,
 * "this is my device", sign-in as alice unless already signed in, and consent as offered.
 */
export async function approveDevice(t: Site, browser: Browser, userCode: string, options: { wrongCodeFirst?: string } = {}): Promise<Page> {
  let page: Page;
  if (options.wrongCodeFirst) {
    page = await browser.go(t.url('/device'));
    await browser.submit(findForm(page, '/device'), { user_code: options.wrongCodeFirst });
  }
  page = await browser.go(t.url('/device'));
  page = await browser.submit(findForm(page, '/device'), { user_code: userCode });
  page = await browser.submit(findForm(page, '/device'), {}, { name: 'confirm', value: 'yes' });
  if (page.forms.some((f) => f.action.endsWith('/login'))) page = await browser.submit(findForm(page, '/login'), { username: 'alice', password: PASSWORD });
  return browser.submit(findForm(page, '/confirm'));
}

/**
 * Opens the authorization endpoint for `clientId` as a browser would (a valid PKCE request for
 * notes:read at the notes server), without following the answer: for clients the test has
 * no openid-client configuration of, such as metadata document URLs.
 */
export function openAuthorization(t: Site, clientId: string, redirectUri = 'http://127.0.0.1:7777/callback'): Promise<Response> {
  const url = new URL(t.url('/auth'));
  url.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'notes:read',
    resource: NOTES,
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    state: 'xyz',
  }).toString();
  return fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
}
