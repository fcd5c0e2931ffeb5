/**
 * Every failure of the token, registration, revocation and introspection endpoints is a
 * standard OAuth error body (RFC 6749 §5.2, RFC 7591 §3.2.2): `application/json`, a string
 * `error` from the IANA "OAuth Extensions Error" registry, and a non-empty string
 * `error_description` saying what went wrong. One table, one request per kind of failure the
 * engine or this server's own code answers (bad-input.test.ts checks that malformed input is
 * safe; this checks the shape of the answer).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { NOTES, SECRET } from '../helpers/fixtures.js';
import { startDevice } from '../helpers/flows.js';

const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';
const TOKEN = 'an-initial-access-token-that-is-long-enough';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const basic = (id: string, secret = SECRET) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/**
 * The error codes an OAuth endpoint may answer: RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1,
 * RFC 7591 §3.2.2, RFC 8628 §3.5, RFC 8707 §2 (the IANA "OAuth Extensions Error" registry).
 */
const REGISTERED_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'temporarily_unavailable',
  'server_error',
  'invalid_token',
  'insufficient_scope',
  'unsupported_token_type',
  'invalid_redirect_uri',
  'invalid_client_metadata',
  'invalid_software_statement',
  'unapproved_software_statement',
  'authorization_pending',
  'slow_down',
  'access_denied',
  'expired_token',
  'invalid_target',
]);

type SiteName = 'open' | 'limited' | 'token';

interface Failure {
  label: string;
  site?: SiteName;
  path: '/token' | '/register' | '/token/revocation' | '/token/introspection';
  body: string;
  headers?: Record<string, string>;
  /** requests sent first (their answers unchecked): a device code to poll, a limit to use up */
  prime?: (t: TestServer) => Promise<Record<string, string> | void>;
  status: number;
  error: string;
}

const json = (value: unknown) => ({ body: JSON.stringify(value), headers: { 'content-type': JSON_TYPE } });
const publicClient = (extra: Record<string, unknown> = {}) => ({
  client_name: 'Agent',
  redirect_uris: ['http://127.0.0.1:7000/callback'],
  token_endpoint_auth_method: 'none',
  ...extra,
});

const failures: Failure[] = [
  // the token endpoint
  { label: 'token: no parameters', path: '/token', body: '', status: 400, error: 'invalid_request' },
  { label: 'token: no grant_type', path: '/token', body: 'scope=notes%3Aread', headers: { authorization: basic('nightly-report') }, status: 400, error: 'invalid_request' },
  { label: 'token: the password grant', path: '/token', body: 'grant_type=password&username=alice&password=x', headers: { authorization: basic('nightly-report') }, status: 400, error: 'unsupported_grant_type' },
  { label: 'token: a wrong client secret', path: '/token', body: 'grant_type=client_credentials', headers: { authorization: basic('nightly-report', 'not-the-secret-at-all') }, status: 401, error: 'invalid_client' },
  { label: 'token: an unknown client', path: '/token', body: 'grant_type=client_credentials', headers: { authorization: basic('nobody') }, status: 401, error: 'invalid_client' },
  { label: 'token: a grant the client may not use', path: '/token', body: 'grant_type=refresh_token&refresh_token=abc', headers: { authorization: basic('nightly-report') }, status: 400, error: 'unauthorized_client' }, // RFC 6749 §5.2 (the engine says invalid_request: src/provider/grant-type-errors.ts)
  { label: 'token: an unknown resource', path: '/token', body: `grant_type=client_credentials&resource=${encodeURIComponent('https://unknown.example.com/mcp')}`, headers: { authorization: basic('nightly-report') }, status: 400, error: 'invalid_target' },
  { label: 'token: an unknown authorization code', path: '/token', body: `grant_type=authorization_code&code=nope&redirect_uri=${encodeURIComponent('http://127.0.0.1:9/callback')}&code_verifier=${'a'.repeat(43)}`, headers: { authorization: basic('confidential-web') }, status: 400, error: 'invalid_grant' },
  { label: 'token: an unknown refresh token', path: '/token', body: 'grant_type=refresh_token&refresh_token=nope&client_id=web-app', status: 400, error: 'invalid_grant' },
  { label: 'token: an unknown device code', path: '/token', body: `grant_type=${encodeURIComponent(DEVICE_GRANT)}&device_code=nope&client_id=tv-app`, status: 400, error: 'invalid_grant' },
  { label: 'token: a body that is not a form', path: '/token', body: '{"grant_type":"client_credentials"}', headers: { 'content-type': JSON_TYPE, authorization: basic('nightly-report') }, status: 400, error: 'invalid_request' },
  {
    label: 'token: a device polling before the person approved',
    path: '/token',
    body: '',
    prime: async (t) => ({ device_code: (await startDevice(t)).device_code }),
    status: 400,
    error: 'authorization_pending',
  },
  {
    label: 'token: a device polling faster than its interval (slow_down, this server’s rule)',
    path: '/token',
    body: '',
    prime: async (t) => {
      const { device_code } = await startDevice(t);
      await send(t, { path: '/token', body: deviceBody(device_code) });
      return { device_code };
    },
    status: 400,
    error: 'slow_down',
  },
  {
    label: 'token: the per-client limit (429, this server’s rule)',
    site: 'limited',
    path: '/token',
    body: `grant_type=client_credentials&resource=${encodeURIComponent(NOTES)}&scope=notes%3Aread`,
    headers: { authorization: basic('nightly-report') },
    prime: async (t) => void (await send(t, { path: '/token', body: `grant_type=client_credentials&resource=${encodeURIComponent(NOTES)}&scope=notes%3Aread`, headers: { authorization: basic('nightly-report') } })),
    status: 429,
    error: 'temporarily_unavailable',
  },
  // the registration endpoint
  { label: 'register: not JSON', path: '/register', body: '{"redirect_uris": [', headers: { 'content-type': JSON_TYPE }, status: 400, error: 'invalid_request' },
  { label: 'register: a JSON array', path: '/register', ...json([1, 2, 3]), status: 400, error: 'invalid_request' },
  { label: 'register: no redirect_uris for the code grant', path: '/register', ...json({ client_name: 'Agent', token_endpoint_auth_method: 'none' }), status: 400, error: 'invalid_redirect_uri' },
  { label: 'register: a native client with an http redirect off loopback', path: '/register', ...json(publicClient({ application_type: 'native', redirect_uris: ['http://app.example.com/cb'] })), status: 400, error: 'invalid_redirect_uri' },
  { label: 'register: a redirect URI with a control character (this server’s rule)', path: '/register', ...json(publicClient({ redirect_uris: ['http://127.0.0.1:7000/callback\r'] })), status: 400, error: 'invalid_redirect_uri' },
  { label: 'register: an unknown token_endpoint_auth_method', path: '/register', ...json(publicClient({ token_endpoint_auth_method: 'carrier_pigeon' })), status: 400, error: 'invalid_client_metadata' },
  { label: 'register: the implicit response type', path: '/register', ...json(publicClient({ response_types: ['token'] })), status: 400, error: 'invalid_client_metadata' },
  {
    label: 'register: the client credentials grant (this server’s rule)',
    path: '/register',
    ...json({ client_name: 'Bot', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', response_types: [] }),
    status: 400,
    error: 'invalid_client_metadata',
  },
  { label: 'register: token mode without the initial access token', site: 'token', path: '/register', ...json(publicClient()), status: 401, error: 'invalid_token' },
  { label: 'register: token mode with a wrong initial access token', site: 'token', path: '/register', body: JSON.stringify(publicClient()), headers: { 'content-type': JSON_TYPE, authorization: 'Bearer not-the-token-at-all-but-long-enough' }, status: 401, error: 'invalid_token' },
  {
    label: 'register: the per-source limit (429, this server’s rule)',
    site: 'limited',
    path: '/register',
    ...json(publicClient({ client_name: 'Second' })),
    prime: async (t) => void (await send(t, { path: '/register', ...json(publicClient({ client_name: 'First' })) })),
    status: 429,
    error: 'temporarily_unavailable',
  },
  // revocation and introspection
  { label: 'revocation: no client authentication', path: '/token/revocation', body: 'token=abc', status: 400, error: 'invalid_request' },
  { label: 'revocation: a wrong client secret', path: '/token/revocation', body: 'token=abc', headers: { authorization: basic('nightly-report', 'not-the-secret-at-all') }, status: 401, error: 'invalid_client' },
  { label: 'revocation: no token', path: '/token/revocation', body: '', headers: { authorization: basic('nightly-report') }, status: 400, error: 'invalid_request' },
  { label: 'introspection: a wrong client secret', path: '/token/introspection', body: 'token=abc', headers: { authorization: basic('notes-server', 'not-the-secret-at-all') }, status: 401, error: 'invalid_client' },
  { label: 'introspection: no token', path: '/token/introspection', body: '', headers: { authorization: basic('notes-server') }, status: 400, error: 'invalid_request' },
];

function deviceBody(deviceCode: string): string {
  return new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: 'tv-app' }).toString();
}

async function send(t: TestServer, request: { path: string; body: string; headers?: Record<string, string> }) {
  const res = await fetch(t.url(request.path), { method: 'POST', headers: { 'content-type': FORM, ...request.headers }, body: request.body });
  return { res, text: await res.text() };
}

describe('OAuth error bodies', () => {
  const sites = {} as Record<SiteName, TestServer>;

  before(async () => {
    [sites.open, sites.limited, sites.token] = await Promise.all([
      startServer({ store: 'sqlite' }),
      startServer({ store: 'sqlite', config: { rateLimits: { tokenPerClient: { max: 1, window: 3600 }, registrationPerSource: { max: 1, window: 3600 } } } }),
      startServer({ store: 'sqlite', config: { registration: { mode: 'token', initialAccessToken: TOKEN } } }),
    ]);
  });
  after(() => Promise.all(Object.values(sites).map((t) => t.stop())));

  test('every token, registration, revocation and introspection failure is JSON {error, error_description} with a registered error code', async () => {
    for (const failure of failures) {
      const t = sites[failure.site ?? 'open'];
      const primed = await failure.prime?.(t);
      const body = primed?.device_code ? deviceBody(primed.device_code) : failure.body;
      const { res, text } = await send(t, { path: failure.path, body, ...(failure.headers ? { headers: failure.headers } : {}) });
      const where = `${failure.label} → ${res.status} ${text.slice(0, 300)}`;
      assert.equal(res.status, failure.status, where);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json(;|$)/, where);
      const answer = JSON.parse(text) as Record<string, unknown>;
      assert.equal(typeof answer.error, 'string', where);
      assert.ok(REGISTERED_ERRORS.has(answer.error as string), `${where}: ${String(answer.error)} is not a registered OAuth error`);
      assert.equal(answer.error, failure.error, where);
      assert.equal(typeof answer.error_description, 'string', `${where}: error_description`);
      assert.ok((answer.error_description as string).trim().length > 0, `${where}: an empty error_description`);
    }
  });
});
