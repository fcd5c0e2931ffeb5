/**
 * Malformed, missing, repeated and oversized parameters on every endpoint get a standard
 * OAuth error or a readable page: never a 5xx, a stack trace or a file path, and the store
 * is not corrupted (every flow still works afterwards).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import fc from 'fast-check';
import { authorizationRequest, userTokens } from '../helpers/flows.js';
import { Browser, findForm, formData, type ParsedForm } from '../helpers/browser-driver.js';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { NOTES, PASSWORD, REDIRECT, SECRET } from '../helpers/fixtures.js';
import { client, jwt } from '../helpers/rp.js';
import type { TestServer } from '../helpers/server.js';

const FORM = 'application/x-www-form-urlencoded';
const basic = `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}`;

interface Probe {
  method: 'GET' | 'POST';
  path: string;
  query?: string;
  body?: string;
  headers?: Record<string, string>;
}

const LEAKS = [/\n\s+at [\w.<]/, /node_modules/, /\/dist\/src\//, /\.ts:\d+/, /oidc-provider\/\d/, /SqliteError|ReplyError|TypeError|ReferenceError/];

async function send(t: TestServer, probe: Probe) {
  const url = t.url(probe.path) + (probe.query ? `?${probe.query}` : '');
  const res = await fetch(url, {
    method: probe.method,
    redirect: 'manual',
    headers: { ...(probe.body !== undefined ? { 'content-type': FORM } : {}), ...probe.headers },
    ...(probe.body !== undefined ? { body: probe.body } : {}),
  });
  const text = await res.text();
  return { res, text };
}

function assertSafe(probe: Probe, res: Response, text: string) {
  const where = `${probe.method} ${probe.path}?${(probe.query ?? '').slice(0, 80)} body=${(probe.body ?? '').slice(0, 80)}`;
  assert.ok(res.status < 500, `${where} → ${res.status}: ${text.slice(0, 300)}`);
  for (const leak of LEAKS) assert.doesNotMatch(text, leak, `${where} leaks ${leak}`);
  assert.equal(res.headers.get('x-powered-by'), null);
  const type = res.headers.get('content-type') ?? '';
  if (res.status >= 400 && type.includes('json')) {
    const body = JSON.parse(text) as { error?: unknown };
    assert.equal(typeof body.error, 'string', `${where}: OAuth error body`);
  }
}

/** GET `path` exactly as written: node:http does not normalise `..` or percent-encoded dots. */
function rawGet(t: TestServer, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(t.issuer);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const big = 'x'.repeat(70 * 1024);
const long = 'y'.repeat(9000);

function probes(): Probe[] {
  const authBase = `client_id=web-app&response_type=code&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256&scope=notes:read&resource=${encodeURIComponent(NOTES)}`;
  return [
    // authorization endpoint
    { method: 'GET', path: '/auth' },
    { method: 'GET', path: '/auth', query: 'client_id=nope&response_type=code' },
    { method: 'GET', path: '/auth', query: `${authBase}&client_id=web-app` },
    { method: 'GET', path: '/auth', query: `${authBase}&redirect_uri=https://evil.example.com/` },
    { method: 'GET', path: '/auth', query: `${authBase}&resource=%ff%fe` },
    { method: 'GET', path: '/auth', query: `${authBase}&resource=not-a-url` },
    { method: 'GET', path: '/auth', query: `${authBase}&resource=${encodeURIComponent(NOTES)}%23frag` },
    { method: 'GET', path: '/auth', query: `${authBase}&state=${long}` },
    { method: 'GET', path: '/auth', query: `client_id=${long}&response_type=code` },
    { method: 'GET', path: '/auth', query: 'client_id[]=a&client_id[x]=b' },
    { method: 'GET', path: '/auth', query: '%%%' },
    { method: 'POST', path: '/auth', body: authBase },
    { method: 'POST', path: '/auth', body: big },
    { method: 'POST', path: '/auth', body: '{"client_id":"web-app"}', headers: { 'content-type': 'application/json' } },
    // token endpoint
    { method: 'POST', path: '/token' },
    { method: 'POST', path: '/token', body: '' },
    { method: 'POST', path: '/token', body: 'grant_type=client_credentials', headers: { authorization: basic } },
    { method: 'POST', path: '/token', body: 'grant_type=client_credentials&grant_type=client_credentials', headers: { authorization: basic } },
    { method: 'POST', path: '/token', body: `grant_type=client_credentials&resource=${encodeURIComponent(NOTES)}&resource=${encodeURIComponent(NOTES)}`, headers: { authorization: basic } },
    { method: 'POST', path: '/token', body: 'grant_type=authorization_code&code=abc&redirect_uri=x&code_verifier=y', headers: { authorization: basic } },
    { method: 'POST', path: '/token', body: 'grant_type=refresh_token&refresh_token=%ff', headers: { authorization: basic } },
    { method: 'POST', path: '/token', body: 'grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=nope&client_id=tv-app' },
    { method: 'POST', path: '/token', body: 'grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=tv-app' },
    { method: 'POST', path: '/token', body: `grant_type=client_credentials&scope=${long}`, headers: { authorization: basic } },
    { method: 'POST', path: '/token', body: big, headers: { authorization: basic } },
    { method: 'POST', path: '/token', body: 'grant_type=client_credentials', headers: { authorization: 'Basic %%%' } },
    { method: 'POST', path: '/token', body: 'grant_type=client_credentials', headers: { authorization: `Basic ${Buffer.from('only-a-name').toString('base64')}` } },
    { method: 'POST', path: '/token', body: 'grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c' },
    { method: 'POST', path: '/token', body: 'grant_type=client_credentials', headers: { 'content-type': 'text/plain' } },
    { method: 'GET', path: '/token' },
    // introspection / revocation
    { method: 'POST', path: '/token/introspection', body: 'token=', headers: { authorization: basic } },
    { method: 'POST', path: '/token/introspection', body: 'token=a&token=b', headers: { authorization: basic } },
    { method: 'POST', path: '/token/introspection', body: `token=${long}&token_type_hint=weird`, headers: { authorization: basic } },
    { method: 'POST', path: '/token/revocation', body: 'token=a&token=b', headers: { authorization: basic } },
    { method: 'POST', path: '/token/revocation', body: '', headers: { authorization: basic } },
    // device flow
    { method: 'POST', path: '/device/auth', body: '' },
    { method: 'POST', path: '/device/auth', body: 'client_id=tv-app&resource=https://unknown.example.com/mcp' },
    { method: 'POST', path: '/device/auth', body: 'client_id=tv-app&client_id=web-app' },
    { method: 'POST', path: '/device/auth', body: `client_id=tv-app&scope=${long}` },
    { method: 'GET', path: '/device', query: `user_code=${long}` },
    { method: 'GET', path: '/device', query: 'user_code=a&user_code=b' },
    { method: 'POST', path: '/device', body: 'user_code=ABCD-EFGH' },
    { method: 'POST', path: '/device', body: 'xsrf=x&user_code=ABCD-EFGH' },
    { method: 'POST', path: '/device', body: big },
    { method: 'GET', path: '/device/does-not-exist' },
    // interactions (our routes)
    { method: 'GET', path: '/interaction/unknown-uid' },
    { method: 'GET', path: `/interaction/${'z'.repeat(500)}` },
    { method: 'GET', path: '/interaction/%ff' },
    { method: 'POST', path: '/interaction/unknown/login', body: 'username=a&password=b&csrf=c' },
    { method: 'POST', path: '/interaction/unknown/confirm', body: 'scope=0:notes:read' },
    { method: 'POST', path: '/interaction/unknown/abort', body: big },
    { method: 'POST', path: '/interaction/unknown/login', body: '{}', headers: { 'content-type': 'application/json' } },
    // the rest
    { method: 'GET', path: '/jwks', query: 'x=%ff' },
    { method: 'GET', path: '/me' },
    { method: 'GET', path: '/me', headers: { authorization: 'Bearer not-a-token' } },
    { method: 'GET', path: '/session/end', query: 'id_token_hint=garbage&post_logout_redirect_uri=https://evil.example.com' },
    { method: 'POST', path: '/session/end/confirm', body: 'xsrf=nope&logout=yes' },
    { method: 'GET', path: '/.well-known/unknown-thing' },
    { method: 'GET', path: '/.well-known/oauth-authorization-server/extra/path' },
    // registration
    { method: 'GET', path: '/register' },
    { method: 'POST', path: '/register', body: '{}', headers: { 'content-type': 'application/json' } },
    { method: 'POST', path: '/register', body: '{"redirect_uris":', headers: { 'content-type': 'application/json' } },
    { method: 'POST', path: '/register', body: '[1,2,3]', headers: { 'content-type': 'application/json' } },
    { method: 'POST', path: '/register', body: `{"redirect_uris":["${long}"]}`, headers: { 'content-type': 'application/json' } },
    { method: 'POST', path: '/register', body: big, headers: { 'content-type': 'application/json' } },
    { method: 'POST', path: '/register', body: 'redirect_uris=x' },
    // connected apps
    { method: 'GET', path: '/account/apps', query: 'done=%ff' },
    { method: 'POST', path: '/account/apps/revoke', body: 'grant=x&csrf=y' },
    { method: 'POST', path: '/account/apps/revoke-all', body: big },
    { method: 'GET', path: '/healthz', query: 'x=1' },
  ];
}

for (const kind of STORE_KINDS) {
  describe(`bad input (${kind})`, () => {
    // generous limits: the fuzzing must reach the handlers, and alice must still sign in at the end
    const generous = { max: 100_000, window: 60 };
    const s = serverFixture(kind, {
      config: {
        rateLimits: {
          signInPerAccountSource: generous,
          signInPerAccount: generous,
          clientAuthFailuresPerClientSource: generous,
          clientAuthFailuresPerSource: generous,
          signInPerSource: generous,
          tokenPerClient: generous,
          registrationPerSource: generous,
          userCodesPerSource: generous,
          documentFetchesPerHost: generous,
        },
      },
    });

    it('every endpoint answers malformed, missing, repeated and oversized input safely', async () => {
      for (const probe of probes()) {
        const { res, text } = await send(s.t, probe);
        assertSafe(probe, res, text);
      }
    });

    it('path traversal under /static, sent raw (no URL parser normalises it on the way), is a plain 404', async () => {
      // fetch and new URL() would resolve `..` and `%2e%2e` before sending; node:http sends the path as written.
      // views/static/../../package.json is the project's own package.json.
      const paths = [
        '/static/../../package.json',
        '/static/%2e%2e/%2e%2e/package.json',
        '/static/..%2f..%2fpackage.json',
        '/static/%2e%2e%2f%2e%2e%2fpackage.json',
        '/static/..%5c..%5cpackage.json',
        '/static/....//....//package.json',
      ];
      for (const path of paths) {
        const { status, body } = await rawGet(s.t, path);
        assert.equal(status, 404, `${path} → ${status}: ${body.slice(0, 200)}`);
        assert.equal(body, 'Not Found', path);
        assert.doesNotMatch(body, /"name":\s*"mcp-authz"/, `${path}: no file outside static is served`);
      }
      // the same request for a real asset is served, so the 404s above are the traversal refused, not a broken route
      assert.equal((await rawGet(s.t, '/static/app.css')).status, 200);
    });

    it('random parameter values never produce a 5xx (fast-check)', async () => {
      const endpoints: { method: 'GET' | 'POST'; path: string; params: string[]; headers?: Record<string, string> }[] = [
        { method: 'GET', path: '/auth', params: ['client_id', 'response_type', 'redirect_uri', 'scope', 'resource', 'code_challenge', 'code_challenge_method', 'state', 'prompt'] },
        { method: 'POST', path: '/token', params: ['grant_type', 'code', 'redirect_uri', 'code_verifier', 'refresh_token', 'scope', 'resource', 'device_code', 'client_id'], headers: { authorization: basic } },
        { method: 'POST', path: '/token/introspection', params: ['token', 'token_type_hint'], headers: { authorization: basic } },
        { method: 'POST', path: '/token/revocation', params: ['token', 'token_type_hint'], headers: { authorization: basic } },
        { method: 'POST', path: '/device/auth', params: ['client_id', 'scope', 'resource'] },
        { method: 'POST', path: '/device', params: ['xsrf', 'user_code', 'confirm', 'abort'] },
      ];
      const value = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('', 'web-app', 'tv-app', NOTES, 'client_credentials', 'S256', '%ff', 'a'.repeat(300)));
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...endpoints), fc.array(fc.tuple(fc.nat(), value), { maxLength: 6 }), async (endpoint, pairs) => {
          const params = new URLSearchParams();
          for (const [i, v] of pairs) params.append(endpoint.params[i % endpoint.params.length]!, v);
          const probe: Probe =
            endpoint.method === 'GET'
              ? { method: 'GET', path: endpoint.path, query: params.toString(), ...(endpoint.headers ? { headers: endpoint.headers } : {}) }
              : { method: 'POST', path: endpoint.path, body: params.toString(), ...(endpoint.headers ? { headers: endpoint.headers } : {}) };
          const { res, text } = await send(s.t, probe);
          assertSafe(probe, res, text);
        }),
        { numRuns: 150 },
      );
    });

    it('random registration metadata never produces a 5xx (fast-check)', async () => {
      const text = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', 'https://app.example.com/cb', 'http://127.0.0.1/cb', 'javascript:alert(1)', 'none', 'web', 'native', NOTES, '%ff'));
      const metadata = fc.record(
        {
          redirect_uris: fc.oneof(fc.array(text, { maxLength: 3 }), text, fc.constant(null)),
          client_name: fc.oneof(text, fc.integer()),
          token_endpoint_auth_method: fc.oneof(text, fc.constantFrom('none', 'client_secret_basic', 'private_key_jwt', 'client_secret_post')),
          grant_types: fc.oneof(fc.array(fc.constantFrom('authorization_code', 'refresh_token', 'client_credentials', 'implicit', 'password', 'x'), { maxLength: 3 }), text),
          response_types: fc.oneof(fc.array(fc.constantFrom('code', 'token', 'id_token', ''), { maxLength: 2 }), text),
          application_type: text,
          scope: fc.oneof(text, fc.constantFrom('openid notes:read', 'notes:read unknown:scope')),
          client_id: text,
          jwks: fc.oneof(fc.constant({ keys: [] }), fc.constant({ keys: [{ kty: 'EC' }] }), text),
          jwks_uri: text,
          logo_uri: text,
        },
        { requiredKeys: [] },
      );
      await fc.assert(
        fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: metadata }, { weight: 1, arbitrary: fc.jsonValue() }), async (body) => {
          const probe: Probe = { method: 'POST', path: '/register', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
          const { res, text: answer } = await send(s.t, probe);
          assertSafe(probe, res, answer);
        }),
        { numRuns: 120 },
      );
    });

    it('random form fields on the sign-in, consent and connected-apps pages never produce a 5xx (fast-check)', async () => {
      // live pages, with their session cookies and real CSRF tokens among the values tried
      const browser = new Browser();
      const request = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read notes:write', resource: NOTES });
      let page = await browser.go(request.url, {}, REDIRECT);
      const login = findForm(page, '/login');
      page = await browser.go(request.url, {}, REDIRECT);
      const secondLogin = findForm(page, '/login');
      page = await browser.submit(secondLogin, { username: 'alice', password: PASSWORD }, undefined, REDIRECT);
      const consent = findForm(page, '/confirm');
      page = await browser.go(s.t.url('/account/apps'));
      const apps = page.forms.filter((f) => f.action.includes('/account/apps'));

      const fuzzForm = async (form: ParsedForm, runs: number) => {
        const names = [...new Set([...form.fields.map((f) => f.name), ...form.buttons.map((b) => b.name), 'scope', 'username', 'password', 'grant'])];
        const known = form.fields.map((f) => f.value).filter(Boolean);
        const value = fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.constantFrom('', 'alice', '0:notes:read', '0:notes:write', '1:notes:read', '0:', ':', '%ff', 'a'.repeat(300), ...known),
        );
        await fc.assert(
          fc.asyncProperty(fc.boolean(), fc.array(fc.tuple(fc.nat(), value), { maxLength: 6 }), async (asSubmitted, pairs) => {
            // half the time from the form as the page would submit it (real CSRF token), so the handler is reached
            const body = asSubmitted ? formData(form) : new URLSearchParams();
            for (const [i, v] of pairs) body.append(names[i % names.length]!, v);
            const url = new URL(form.action);
            const probe: Probe = { method: 'POST', path: url.pathname, body: body.toString(), headers: { cookie: browser.jar.header(form.action) } };
            const { res, text } = await send(s.t, probe);
            assertSafe(probe, res, text);
          }),
          { numRuns: runs },
        );
      };
      await fuzzForm(login, 60);
      await fuzzForm(consent, 60);
      for (const form of apps) await fuzzForm(form, 30);
      // the fuzzing got past the CSRF checks into the handlers
      assert.ok(s.t.logs.some((l) => l.event === 'login.failed'), 'the sign-in handler was reached');
      assert.ok(s.t.logs.some((l) => l.event === 'consent.granted' || l.event === 'consent.refused'), 'the consent handler was reached');
    });

    it('and afterwards every flow still works (nothing in the store was corrupted)', async () => {
      const cc = await fetch(s.t.url('/token'), {
        method: 'POST',
        headers: { 'content-type': FORM, authorization: basic },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
      });
      assert.equal(cc.status, 200);
      const { config, tokens } = await userTokens(s.t, 'web-app');
      assert.equal(jwt(tokens.access_token).payload.aud, NOTES);
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
      assert.ok(refreshed.access_token);
    });
  });
}
