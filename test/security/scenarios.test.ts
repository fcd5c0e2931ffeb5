/**
 * The MCP security guidance's test scenarios, one named test each, against a real server:
 * access without consent, out-of-scope access, malicious parameters, authentication bypass
 * and information disclosure in errors. (Token forgery: forgery.test.ts; fuzzing of every
 * endpoint: bad-input.test.ts; no secret in any log: secrets.test.ts; audit completeness:
 * audit-completeness.test.ts.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { Browser, authorize, findForm } from '../helpers/browser-driver.js';
import { NOTES, PASSWORD, REDIRECT, SECRET } from '../helpers/fixtures.js';
import { authorizationRequest, userTokens } from '../helpers/flows.js';
import { client, jwt } from '../helpers/rp.js';
import { createVerifier, VerifierError, type Verifier } from '../../src/verifier/index.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const LEAKS = [/\n\s+at [\w.<]/, /node_modules/, /\/dist\/src\//, /\.ts:\d+/, /oidc-provider/i, /koa/i, /SqliteError|ReplyError|TypeError|ReferenceError/, /v\d+\.\d+\.\d+/];

async function token(t: TestServer, body: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(t.url('/token'), { method: 'POST', headers: { ...FORM, ...headers }, body: new URLSearchParams(body) });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

describe('security scenarios', () => {
  let t: TestServer;
  let verifier: Verifier;
  before(async () => {
    t = await startServer({ store: 'sqlite' });
    verifier = createVerifier({ issuer: t.issuer, resource: NOTES });
  });
  after(async () => {
    await verifier?.close();
    await t?.stop();
  });

  test('access without consent: no code before the person allows, none after a refusal, no token from a guessed code', async () => {
    const request = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES });
    const browser = new Browser();
    let page = await browser.go(request.url, {}, REDIRECT);
    page = await browser.submit(findForm(page, '/login'), { username: 'alice', password: PASSWORD }, undefined, REDIRECT);
    assert.ok(page.forms.some((f) => f.action.endsWith('/confirm')), 'signed in, the person is asked first');
    assert.ok(!page.url.includes('code='));
    const refused = new URL((await browser.submit(findForm(page, '/abort'), {}, undefined, REDIRECT)).url);
    assert.equal(refused.searchParams.get('error'), 'access_denied');
    assert.equal(refused.searchParams.get('code'), null);
    const guessed = await token(t, { grant_type: 'authorization_code', code: 'a'.repeat(43), redirect_uri: REDIRECT, client_id: 'web-app', code_verifier: 'b'.repeat(43) });
    assert.equal(guessed.body.error, 'invalid_grant');
    await assert.rejects(verifier.authenticate(undefined), (err: VerifierError) => err.status === 401);
  });

  test('out-of-scope access: a token is held to its scopes, its MCP server, and its client’s policy', async () => {
    const { tokens } = await userTokens(t, 'web-app', 'notes:read');
    await verifier.authenticate(`Bearer ${tokens.access_token}`, { requiredScopes: ['notes:read'] });
    await assert.rejects(verifier.authenticate(`Bearer ${tokens.access_token}`, { requiredScopes: ['notes:write'] }), (err: VerifierError) => err.status === 403 && err.oauthError === 'insufficient_scope');
    const calendar = createVerifier({ issuer: t.issuer, resource: 'https://calendar.example.com/mcp' });
    try {
      await assert.rejects(calendar.verifyAccessToken(tokens.access_token), (err: VerifierError) => err.code === 'ERR_TOKEN_AUDIENCE');
    } finally {
      await calendar.close();
    }
    // nightly-report may hold notes:read only: asking for more never yields more
    const machine = await token(t, { grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read notes:delete' }, { authorization: basic('nightly-report', SECRET) });
    assert.equal(machine.status, 200, JSON.stringify(machine.body));
    // what the token itself carries, which is what an MCP server checks — not the reply's `scope`
    const claims = jwt(machine.body.access_token!).payload;
    assert.equal(claims.scope, 'notes:read');
    assert.equal(claims.aud, NOTES);
    // confidential-web may use only Notes
    const request = await authorizationRequest(t, 'confidential-web', { scope: 'calendar:read', resource: 'https://calendar.example.com/mcp' });
    const page = await new Browser().go(request.url, {}, REDIRECT);
    assert.ok(page.url.startsWith(REDIRECT) ? new URL(page.url).searchParams.get('error') === 'invalid_target' : page.status === 400);
  });

  test('malicious parameters: foreign redirect URIs, script in parameters, header injection, unknown resources', async () => {
    const base = { client_id: 'web-app', response_type: 'code', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', resource: NOTES };
    for (const redirect of ['https://evil.example.com/cb', 'javascript:alert(1)', `${REDIRECT}/../evil`, 'http://127.0.0.1.evil.example.com:9/callback']) {
      const res = await fetch(`${t.url('/auth')}?${new URLSearchParams({ ...base, redirect_uri: redirect, scope: 'notes:read' })}`, { redirect: 'manual' });
      assert.equal(res.status, 400, redirect);
      assert.equal(res.headers.get('location'), null, `never redirected to ${redirect}`);
    }
    const xss = '"><script>alert(1)</script>';
    const res = await fetch(`${t.url('/auth')}?${new URLSearchParams({ ...base, redirect_uri: REDIRECT, scope: xss, state: `x\r\nSet-Cookie: evil=1` })}`, { redirect: 'manual' });
    // refused back to the registered redirect URI (invalid_scope), the CR LF in state kept inside the Location's query, encoded
    assert.equal(res.status, 303);
    const location = res.headers.get('location') ?? '';
    assert.ok(location.startsWith(`${REDIRECT}?`), location);
    const back = new URL(location).searchParams;
    assert.equal(back.get('error'), 'invalid_scope');
    assert.equal(back.get('state'), `x\r\nSet-Cookie: evil=1`, 'state comes back as sent');
    assert.ok(!location.includes('\n') && !location.includes('\r') && !location.includes('<script>'), location);
    assert.equal(res.headers.get('set-cookie'), null, 'no header injection: no cookie at all is set');
    for (const [name, value] of res.headers) assert.ok(!/evil/i.test(name) && !/evil=1/.test(value.replace(/evil%3D1/g, '')), `${name}: ${value}`);
    const unknown = await fetch(`${t.url('/auth')}?${new URLSearchParams({ ...base, redirect_uri: REDIRECT, scope: 'notes:read', resource: 'https://evil.example.com/mcp', state: 's' })}`, { redirect: 'manual' });
    assert.equal(new URL(unknown.headers.get('location')!).searchParams.get('error'), 'invalid_target');
  });

  test('authentication bypass: no secret, a wrong secret, an unsigned assertion, another client’s refresh token, a forged sign-in form', async () => {
    const body = { grant_type: 'client_credentials', resource: NOTES };
    assert.equal((await token(t, { ...body, client_id: 'nightly-report' })).body.error, 'invalid_client');
    assert.equal((await token(t, body, { authorization: basic('nightly-report', 'not-the-secret-at-all') })).body.error, 'invalid_client');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'nightly-report', sub: 'nightly-report', aud: t.issuer, jti: 'j', exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url')}.`;
    const unsigned = await token(t, { ...body, client_id: 'nightly-report', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: none });
    assert.equal(unsigned.body.error, 'invalid_client');

    const { tokens } = await userTokens(t, 'web-app', 'notes:read');
    const stolen = await token(t, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: 'xss-app' });
    assert.equal(stolen.body.error, 'invalid_grant', 'a refresh token works only for its own client');

    const request = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES });
    const browser = new Browser();
    const page = await browser.go(request.url, {}, REDIRECT);
    const login = findForm(page, '/login');
    const forged = await browser.go(login.action, { method: 'POST', body: new URLSearchParams({ username: 'alice', password: PASSWORD, csrf: 'forged' }) }, REDIRECT);
    assert.equal(forged.status, 403, 'a sign-in without the page’s CSRF token is refused');
    const otherBrowser = new Browser();
    const stranger = await otherBrowser.go(login.action, { method: 'POST', body: new URLSearchParams({ username: 'alice', password: PASSWORD, csrf: 'x' }) }, REDIRECT);
    assert.ok(stranger.status >= 400 && stranger.status < 500, 'another browser cannot finish this sign-in');
    // and the real person still can
    const callback = await authorize(browser, request.url, REDIRECT, PASSWORD);
    assert.ok(callback.searchParams.get('code'));
    await client.authorizationCodeGrant(request.config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state });
  });

  test('information disclosure in errors: generic messages with a request id, no stack, path or version', async () => {
    const probes: [string, RequestInit][] = [
      [t.url('/nope'), {}],
      [t.url('/token'), { method: 'POST', headers: FORM, body: 'grant_type=password&username=a&password=b' }],
      [t.url('/token'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"broken' }],
      [t.url('/interaction/not-a-real-uid'), {}],
      [t.url('/interaction/x/login'), { method: 'POST', headers: FORM, body: 'csrf=1' }],
      [t.url('/auth?client_id=unknown-client&response_type=code'), {}],
      [t.url('/register'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2' }],
      [t.url('/device'), { method: 'POST', headers: FORM, body: 'user_code=%00%ff' }],
      [t.url('/token/introspection'), { method: 'POST', headers: FORM, body: 'token=x' }],
    ];
    for (const [url, init] of probes) {
      const res = await fetch(url, { ...init, redirect: 'manual' });
      const text = await res.text();
      assert.ok(res.status >= 400 && res.status < 500, `${url} → ${res.status}`);
      for (const leak of LEAKS) assert.doesNotMatch(text, leak, `${url} leaks ${leak}`);
      for (const [name, value] of res.headers) {
        assert.ok(!/^x-powered-by$|^server$/i.test(name), `${url} sends ${name}`);
        for (const leak of LEAKS.slice(0, 5)) assert.doesNotMatch(value, leak, `${url} header ${name} leaks`);
      }
      if ((res.headers.get('content-type') ?? '').includes('text/html')) assert.match(text, /Reference: <code>[^<]+<\/code>/, `${url}: the page names a request id`);
    }
  });
});
