/**
 * Malformed, missing, repeated and oversized parameters on every endpoint get a standard
 * OAuth error or a readable page: never a 5xx, a stack trace or a file path, and the store
 * is not corrupted (every flow still works afterwards).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { userTokens } from '../helpers/flows.js';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { NOTES, REDIRECT, SECRET } from '../helpers/fixtures.js';
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
    { method: 'GET', path: '/static/../package.json' },
    { method: 'GET', path: '/static/%2e%2e/package.json' },
    { method: 'GET', path: '/reg' },
    { method: 'POST', path: '/reg', body: '{}', headers: { 'content-type': 'application/json' } },
    { method: 'GET', path: '/healthz', query: 'x=1' },
  ];
}

for (const kind of STORE_KINDS) {
  describe(`bad input (${kind})`, () => {
    const s = serverFixture(kind);

    it('every endpoint answers malformed, missing, repeated and oversized input safely', async () => {
      for (const probe of probes()) {
        const { res, text } = await send(s.t, probe);
        assertSafe(probe, res, text);
        if (probe.path === '/static/../package.json' || probe.path === '/static/%2e%2e/package.json') {
          assert.doesNotMatch(text, /"name":\s*"mcp-authz"/, 'no file outside static is served');
        }
      }
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
