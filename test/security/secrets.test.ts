/**
 * No secret ever reaches a log: every flow runs against a real server (SQLite, logging at
 * debug), every token, code, secret and password it handles is collected, and none of them
 * appears in the application log, the audit log, or any error response: not as itself, nor in
 * any form it travels in (test/helpers/secret-forms.ts) — URL-encoded, form-encoded, JSON- or
 * HTML-escaped, a client's `Basic base64(id:secret)` — and neither does any cookie value the
 * server set (sessions, interactions, their signatures, the CSRF cookie).
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
import { basicForms, encodedForms, setCookies } from '../helpers/secret-forms.js';
import { SESSION_COOKIE } from '../../src/provider/session-guard.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const WRONG_PASSWORD = 'wrong-horse-battery-staple-123';

describe('no secret reaches a log', () => {
  let t: TestServer;
  const secrets = new Set<string>([PASSWORD, WRONG_PASSWORD, SECRET]);
  const errorBodies: string[] = [];
  /** client credentials sent (client id, secret), searched for as HTTP Basic values too */
  const basicPairs: [string, string][] = [['confidential-web', SECRET]];
  /** every cookie value the server set (name → values) */
  const cookies = new Map<string, Set<string>>();
  /** path segments of every URL the server redirected to: what the address bar shows is no secret */
  const inUrls = new Set<string>();
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
      const location = res.headers.get('location');
      if (location) for (const segment of new URL(location, 'http://x').pathname.split('/')) inUrls.add(segment);
      for (const [name, value] of setCookies(res)) {
        if (!cookies.has(name)) cookies.set(name, new Set());
        cookies.get(name)!.add(value);
      }
      // a cookie the answer sets is where it belongs; anything else in an error answer is searched
      const headers = [...res.headers].filter(([k]) => k !== 'set-cookie');
      if (res.status >= 400) errorBodies.push(`${res.status} ${headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n${await res.clone().text()}`);
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
      basicPairs.push(['nightly-report', secret]);
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
    basicPairs.push([registered.client_id!, registered.client_secret!]);
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

    // the cookies the browser holds at the end, and every one the server set on the way
    for (const cookie of browser.jar.cookies.values()) {
      if (!cookies.has(cookie.name)) cookies.set(cookie.name, new Set());
      cookies.get(cookie.name)!.add(cookie.value);
    }
    for (const name of [SESSION_COOKIE, 'mcp_authz_interaction', 'mcp_authz_resume', 'mcp-authz.csrf']) {
      assert.ok(cookies.has(name), `the server set ${name} (cookies seen: ${[...cookies.keys()].join(', ')})`);
      if (name !== 'mcp-authz.csrf') assert.ok(cookies.has(`${name}.sig`), `the server set ${name}.sig`);
    }

    /** every searched string → what it is (for the message; never the secret) */
    const forms = new Map<string, string>();
    const add = (more: Map<string, string>, what: string) => {
      for (const [form, label] of more) if (form.length >= 8 && !forms.has(form)) forms.set(form, `${label} form of ${what}`);
    };
    for (const secret of secrets) add(encodedForms(secret), `a secret (${secret.slice(0, 4)}…, ${secret.length} chars)`);
    for (const [id, secret] of basicPairs) add(basicForms(id, secret), `${id}'s credentials (secret ${secret.slice(0, 4)}…)`);
    // the interaction cookies hold the interaction's id, which is also in its URL (/interaction/<uid>),
    // hence in request logs; it is an identifier, not a credential — what proves the browser is the
    // cookie's signature (.sig), which is searched for like every other cookie value
    const identifiers = new Set(['mcp_authz_interaction', 'mcp_authz_resume']);
    for (const [name, values] of cookies) {
      for (const value of values) {
        if (identifiers.has(name) && inUrls.has(value)) continue;
        add(encodedForms(value), `the cookie ${name} (${value.slice(0, 4)}…, ${value.length} chars)`);
      }
    }
    for (const name of [SESSION_COOKIE, `${SESSION_COOKIE}.sig`, 'mcp_authz_interaction.sig', 'mcp_authz_resume.sig', 'mcp-authz.csrf']) {
      assert.ok([...forms.values()].some((what) => what.includes(`the cookie ${name} (`)), `${name} values are searched for`);
    }
    // the encodings were really searched for: the password has spaces, so it has forms of its own
    assert.ok(forms.has('correct+horse+battery+staple') && forms.has('correct%20horse%20battery%20staple'));
    assert.ok(forms.has(`Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}`));
    // and confidential-web's as openid-client sends it (client id and secret strictly form-urlencoded)
    assert.ok(forms.has(`Basic ${Buffer.from('confidential%2Dweb:' + SECRET.replace(/-/g, '%2D')).toString('base64')}`));

    for (const [name, text] of sources) {
      for (const [form, what] of forms) {
        const at = text.indexOf(form);
        assert.ok(at < 0, `${name} contains the ${what}: …${text.slice(Math.max(0, at - 300), at + 100).replace(form, '<HERE>')}…`);
      }
    }
  });
});
