/**
 * No secret ever reaches a log: every flow runs against a real server (SQLite, logging at
 * debug), every token, code, secret and password it handles is collected, and none of them
 * appears in the application log, the audit log, or any error response.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.js';
import { Browser, authorize, findForm } from '../helpers/browser-driver.js';
import { NOTES, PASSWORD, REDIRECT, SECRET } from '../helpers/fixtures.js';
import { approveDevice, authorizationRequest, pollDevice, startDevice } from '../helpers/flows.js';
import { client } from '../helpers/rp.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const WRONG_PASSWORD = 'wrong-horse-battery-staple-123';

describe('no secret reaches a log', () => {
  let t: TestServer;
  const secrets = new Set<string>([PASSWORD, WRONG_PASSWORD, SECRET]);
  const errorBodies: string[] = [];
  const originalFetch = globalThis.fetch;

  /** Remembers every string value of a token response (tokens, codes) as a secret. */
  const collect = (...values: unknown[]) => {
    for (const value of values) if (typeof value === 'string' && value.length >= 8) secrets.add(value);
  };

  before(async () => {
    // a registered machine client's secret is among those followed: the operator allows such clients
    t = await startServer({ store: 'sqlite', config: { registration: { clientCredentials: { scopes: ['notes:read'] } } } });
    // every answer the tests get back: error bodies are checked too
    globalThis.fetch = async (input, init) => {
      const res = await originalFetch(input, init);
      if (res.status >= 400) errorBodies.push(`${res.status} ${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${await res.clone().text()}`);
      return res;
    };
  });
  after(async () => {
    globalThis.fetch = originalFetch;
    await t?.stop();
  });

  test('every flow, then a search of every log and error for every secret it handled', async () => {
    // authorization code + PKCE, with a wrong password first, then refresh, introspection, revocation
    const request = await authorizationRequest(t, 'confidential-web', { scope: 'openid notes:read', resource: NOTES });
    collect(request.verifier, request.state);
    const browser = new Browser();
    let page = await browser.go(request.url, {}, REDIRECT);
    page = await browser.submit(findForm(page, '/login'), { username: 'alice', password: WRONG_PASSWORD }, undefined, REDIRECT);
    assert.equal(page.status, 401);
    const callback = await authorize(browser, request.url, REDIRECT, PASSWORD);
    collect(callback.searchParams.get('code'));
    const tokens = await client.authorizationCodeGrant(request.config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state });
    collect(tokens.access_token, tokens.refresh_token, tokens.id_token);
    const refreshed = await client.refreshTokenGrant(request.config, tokens.refresh_token!);
    collect(refreshed.access_token, refreshed.refresh_token);
    await client.tokenIntrospection(request.config, refreshed.access_token);
    await client.tokenRevocation(request.config, refreshed.refresh_token ?? tokens.refresh_token!);
    // sign-in only (no MCP server): an opaque access token for userinfo, whose id is its value
    const signIn = await authorizationRequest(t, 'confidential-web', { scope: 'openid' });
    collect(signIn.verifier, signIn.state);
    const signInCallback = await authorize(browser, signIn.url, REDIRECT, PASSWORD);
    collect(signInCallback.searchParams.get('code'));
    const signInTokens = await client.authorizationCodeGrant(signIn.config, signInCallback, { pkceCodeVerifier: signIn.verifier, expectedState: signIn.state });
    collect(signInTokens.access_token, signInTokens.refresh_token, signInTokens.id_token);

    // a replayed (revoked) refresh token, and a garbage one
    await client.refreshTokenGrant(request.config, tokens.refresh_token!).catch(() => undefined);

    // a public client: rotation and its reuse window
    const pub = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES });
    collect(pub.verifier);
    const pubCallback = await authorize(browser, pub.url, REDIRECT, PASSWORD);
    collect(pubCallback.searchParams.get('code'));
    const pubTokens = await client.authorizationCodeGrant(pub.config, pubCallback, { pkceCodeVerifier: pub.verifier, expectedState: pub.state });
    collect(pubTokens.access_token, pubTokens.refresh_token);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(t.url('/token'), { method: 'POST', headers: FORM, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: pubTokens.refresh_token!, client_id: 'web-app' }) });
      const body = (await res.json()) as Record<string, string>;
      collect(body.access_token, body.refresh_token);
    }

    // client credentials, with a wrong secret too
    for (const secret of [SECRET, 'not-the-secret-but-long-enough']) {
      secrets.add(secret);
      const res = await fetch(t.url('/token'), {
        method: 'POST',
        headers: { ...FORM, authorization: `Basic ${Buffer.from(`nightly-report:${secret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES }),
      });
      collect(((await res.json()) as Record<string, string>).access_token);
    }

    // device flow, with a wrong user code first
    const device = await startDevice(t);
    collect(device.device_code, device.user_code, device.user_code.replace('-', ''));
    await approveDevice(t, browser, device.user_code, { wrongCodeFirst: 'BCDF-GHJK' });
    const polled = await pollDevice(t, device.device_code);
    collect(polled.body.access_token, polled.body.refresh_token);

    // dynamic registration of a confidential client, which then uses its secret
    const reg = await fetch(t.url('/register'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'Secret Holder', redirect_uris: ['https://app.example.com/cb'], grant_types: ['client_credentials'], response_types: [] }),
    });
    const registered = (await reg.json()) as Record<string, string>;
    collect(registered.client_secret);
    const cc = await fetch(t.url('/token'), {
      method: 'POST',
      headers: { ...FORM, authorization: `Basic ${Buffer.from(`${registered.client_id}:${registered.client_secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES }),
    });
    collect(((await cc.json()) as Record<string, string>).access_token);

    // every log line, every audit record (whatever sink files exist), every error answer
    await (t.server as { audit?: { flush(): Promise<void> } }).audit?.flush();
    const auditDir = join(t.dataDir, 'audit');
    const audit = existsSync(auditDir) ? readdirSync(auditDir).map((f) => readFileSync(join(auditDir, f), 'utf8')).join('\n') : '';
    const sources: [string, string][] = [
      ['application log', t.logs.map((l) => JSON.stringify(l)).join('\n')],
      ['audit log', audit],
      ['error responses', errorBodies.join('\n')],
    ];
    assert.ok(t.logs.length > 50, 'the flows were logged');
    for (const event of ['login.failed', 'token.issued', 'token.refreshed', 'token.introspected', 'token.revoked', 'client.registered']) {
      assert.ok(audit.includes(`"event":"${event}"`), `the audit log records ${event}`);
    }
    assert.ok(secrets.size > 20, `collected ${secrets.size} secrets`);
    for (const [name, text] of sources) {
      for (const secret of secrets) {
        assert.ok(!text.includes(secret), `${name} contains a secret (${secret.slice(0, 4)}…, ${secret.length} chars)`);
      }
    }
  });
});
