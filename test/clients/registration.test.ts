/**
 * Dynamic client registration (RFC 7591) as MCP clients use it: open, by initial access
 * token, or off; public clients get no secret; the response echoes what was registered;
 * native/web redirect rules; unknown metadata ignored and unknown scopes dropped; identical
 * public registrations share one client; registrations limited per source; unused clients
 * expire while used ones live on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { Browser, authorize } from '../helpers/browser-driver.js';
import { NOTES, PASSWORD } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { client } from '../helpers/rp.js';

/** the short-lived server's registration.unusedClientTtl, in seconds */
const UNUSED_TTL_S = 8;

const TOKEN = 'an-initial-access-token-that-is-long-enough';

async function register(t: TestServer, metadata: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(t.url('/register'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof metadata === 'string' ? metadata : JSON.stringify(metadata),
  });
  const text = await res.text();
  const json = res.headers.get('content-type')?.includes('application/json');
  return { status: res.status, headers: res.headers, body: (json && text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

const cli = (port: number, extra: Record<string, unknown> = {}) => ({
  client_name: 'CLI Agent',
  redirect_uris: [`http://127.0.0.1:${port}/callback`],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  ...extra,
});

/** alice authorizes a registered public client; returns its tokens. */
async function signIn(t: TestServer, clientId: string, redirectUri: string) {
  const { config, verifier, state, url } = await authorizationRequest(t, clientId, { scope: 'notes:read', resource: NOTES, redirect_uri: redirectUri });
  const callback = await authorize(new Browser(), url, redirectUri, PASSWORD);
  return client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
}

async function refresh(t: TestServer, clientId: string, refreshToken: string) {
  const res = await fetch(t.url('/token'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

async function authorizationPageStatus(t: TestServer, clientId: string, redirectUri: string) {
  const { url } = await authorizationRequest(t, clientId, { scope: 'notes:read', resource: NOTES, redirect_uri: redirectUri });
  const res = await fetch(url, { redirect: 'manual' });
  return res.status;
}

describe('dynamic client registration', () => {
  let open: TestServer;
  let limited: TestServer;
  let withToken: TestServer;
  let off: TestServer;
  let shortLived: TestServer;

  before(async () => {
    [open, limited, withToken, off, shortLived] = await Promise.all([
      startServer({ store: 'sqlite' }),
      startServer({ store: 'sqlite', config: { rateLimits: { registrationPerSource: { max: 3, window: 3600 } } } }),
      startServer({ store: 'sqlite', config: { registration: { mode: 'token', initialAccessToken: TOKEN } } }),
      startServer({ store: 'sqlite', config: { registration: { mode: 'off' } } }),
      startServer({ store: 'sqlite', config: { registration: { unusedClientTtl: UNUSED_TTL_S } } }),
    ]);
  });
  after(() => Promise.all([open, limited, withToken, off, shortLived].map((t) => t?.stop())));

  test('metadata names the registration endpoint', async () => {
    const meta = (await (await fetch(open.url('/.well-known/oauth-authorization-server'))).json()) as Record<string, unknown>;
    assert.equal(meta.registration_endpoint, open.url('/register'));
    const none = (await (await fetch(off.url('/.well-known/oauth-authorization-server'))).json()) as Record<string, unknown>;
    assert.equal(none.registration_endpoint, undefined);
  });

  test('a public client gets no secret; the answer echoes its redirect URIs and auth method; it can sign a person in on any loopback port', async () => {
    const { status, body } = await register(open, cli(1111, { application_type: 'native', software_gadget: 'ignored', scope: 'notes:read claudeai' }));
    assert.equal(status, 201, JSON.stringify(body));
    assert.equal(typeof body.client_id, 'string');
    assert.equal(body.client_secret, undefined);
    assert.equal(body.client_secret_expires_at, undefined);
    assert.deepEqual(body.redirect_uris, ['http://127.0.0.1:1111/callback']);
    assert.equal(body.token_endpoint_auth_method, 'none');
    assert.equal(body.application_type, 'native');
    assert.equal(body.software_gadget, undefined, 'unknown metadata is ignored');
    assert.ok(!String(body.scope ?? '').includes('claudeai'), 'unknown scopes are dropped');
    assert.ok(open.logs.some((l) => l.event === 'registration.scopes_dropped'));

    const tokens = await signIn(open, body.client_id as string, 'http://127.0.0.1:2222/callback');
    assert.ok(tokens.access_token);
  });

  test('without application_type (as Claude Code registers), loopback redirect URIs still work on any port', async () => {
    const { status, body } = await register(open, cli(3333, { client_name: 'No Type' }));
    assert.equal(status, 201, JSON.stringify(body));
    const tokens = await signIn(open, body.client_id as string, 'http://127.0.0.1:4444/callback');
    assert.ok(tokens.refresh_token);

    // the consent page says who vouches for it (nobody) and warns that any local program could claim the name
    const { url } = await authorizationRequest(open, body.client_id as string, { scope: 'notes:write', resource: NOTES, redirect_uri: 'http://127.0.0.1:4445/callback' });
    const browser = new Browser();
    let page = await browser.go(url);
    page = await browser.submit(page.forms.find((f) => f.action.endsWith('/login'))!, { username: 'alice', password: PASSWORD });
    assert.match(page.html, /registered dynamically/);
    assert.match(page.html, /runs on your own computer/);
  });

  test('a hosted https redirect URI is used exactly as registered', async () => {
    const { status, body } = await register(open, { client_name: 'Hosted Agent', redirect_uris: ['https://agent.example/oauth/callback'], token_endpoint_auth_method: 'none' });
    assert.equal(status, 201, JSON.stringify(body));
    const clientId = body.client_id as string;
    assert.equal(await authorizationPageStatus(open, clientId, 'https://agent.example/oauth/callback'), 303, 'on to sign-in');
    for (const other of ['https://agent.example/oauth/callback/x', 'https://agent.example:8443/oauth/callback', 'http://agent.example/oauth/callback']) {
      assert.equal(await authorizationPageStatus(open, clientId, other), 400, other);
    }
  });

  test('a confidential registration gets a secret; native and web redirect rules hold', async () => {
    const confidential = await register(open, { redirect_uris: ['https://app.example.com/cb'], client_name: 'Hosted' });
    assert.equal(confidential.status, 201);
    assert.equal(confidential.body.token_endpoint_auth_method, 'client_secret_basic');
    assert.equal(typeof confidential.body.client_secret, 'string');
    assert.equal(confidential.body.client_secret_expires_at, 0);

    const nativeHttp = await register(open, cli(1, { application_type: 'native', redirect_uris: ['http://app.example.com/cb'] }));
    assert.equal(nativeHttp.status, 400);
    assert.equal(nativeHttp.body.error, 'invalid_redirect_uri');

    const webCustomScheme = await register(open, cli(1, { application_type: 'web', redirect_uris: ['myapp://cb'] }));
    assert.equal(webCustomScheme.status, 400);
    assert.equal(webCustomScheme.body.error, 'invalid_redirect_uri');

    // MCP: redirect URIs are localhost or https, whatever the application type (the engine would let a web client have plain http)
    for (const extra of [{ application_type: 'web' }, {}]) {
      const plainHttp = await register(open, cli(1, { ...extra, redirect_uris: ['http://app.example.com/cb'] }));
      assert.equal(plainHttp.status, 400, JSON.stringify(extra));
      assert.equal(plainHttp.body.error, 'invalid_redirect_uri');
    }

    const notJson = await register(open, '{"redirect_uris": [');
    assert.equal(notJson.status, 400);
    assert.ok(open.logs.some((l) => l.event === 'client.registration_rejected'));
  });

  test('RFC 7591: 201 with the registered metadata, a secret with client_secret_expires_at, client_secret_basic by default, invalid_redirect_uri and invalid_client_metadata', async () => {
    // a confidential client naming no auth method: client_secret_basic, a secret, and when it expires (0: never)
    const sent = {
      client_name: 'Hosted Agent',
      redirect_uris: ['https://agent.example.com/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      application_type: 'web',
    };
    const confidential = await register(open, sent);
    assert.equal(confidential.status, 201, JSON.stringify(confidential.body));
    assert.match(confidential.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(typeof confidential.body.client_id, 'string');
    for (const [name, value] of Object.entries(sent)) assert.deepEqual(confidential.body[name], value, `${name} is echoed`);
    assert.equal(confidential.body.token_endpoint_auth_method, 'client_secret_basic');
    assert.equal(typeof confidential.body.client_secret, 'string');
    assert.ok((confidential.body.client_secret as string).length >= 32, 'a secret of some length');
    assert.equal(confidential.body.client_secret_expires_at, 0);

    // a public client: the same echo, whether registered now or returned as the identical earlier registration
    const publicSent = cli(9100, { client_name: 'Echoed Agent' });
    for (const attempt of ['first', 'identical again']) {
      const answer = await register(open, publicSent);
      assert.equal(answer.status, 201, `${attempt}: ${JSON.stringify(answer.body)}`);
      for (const [name, value] of Object.entries(publicSent)) assert.deepEqual(answer.body[name], value, `${attempt}: ${name} is echoed`);
      assert.equal(answer.body.client_secret, undefined, attempt);
      assert.equal(answer.body.client_secret_expires_at, undefined, attempt);
    }

    const refusals: [string, Record<string, unknown>, string][] = [
      ['no redirect_uris', { client_name: 'No Redirects', token_endpoint_auth_method: 'none' }, 'invalid_redirect_uri'],
      ['a fragment in a redirect URI', cli(9101, { redirect_uris: ['http://127.0.0.1:9101/callback#x'] }), 'invalid_redirect_uri'],
      ['an unknown token_endpoint_auth_method', cli(9102, { token_endpoint_auth_method: 'carrier_pigeon' }), 'invalid_client_metadata'],
      ['the implicit response type', cli(9103, { response_types: ['token'] }), 'invalid_client_metadata'],
      ['the client credentials grant', { client_name: 'Bot', grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic' }, 'invalid_client_metadata'],
    ];
    for (const [label, metadata, error] of refusals) {
      const refused = await register(open, metadata);
      assert.equal(refused.status, 400, `${label}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.error, error, label);
      assert.equal(typeof refused.body.error_description, 'string', label);
      assert.equal(refused.body.client_id, undefined, label);
    }
  });

  test('byte-identical public registrations reuse one client; any difference makes a new one', async () => {
    const body = JSON.stringify(cli(5555, { client_name: 'Reconnecting Agent' }));
    const first = await register(open, body);
    const second = await register(open, body);
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.equal(second.body.client_id, first.body.client_id);
    assert.deepEqual(second.body.redirect_uris, first.body.redirect_uris);
    const other = await register(open, JSON.stringify(cli(5556, { client_name: 'Reconnecting Agent' })));
    assert.notEqual(other.body.client_id, first.body.client_id);
  });

  test('browser-based clients may register from any origin (CORS, MCP-Protocol-Version allowed)', async () => {
    const preflight = await fetch(open.url('/register'), {
      method: 'OPTIONS',
      headers: { origin: 'https://agent.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, mcp-protocol-version' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /MCP-Protocol-Version/i);
    const res = await fetch(open.url('/register'), {
      method: 'POST',
      headers: { origin: 'https://agent.example', 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://agent.example/cb'], token_endpoint_auth_method: 'none' }),
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
  });

  test('registrations are limited per source address: 429 with Retry-After and an OAuth error', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await register(limited, cli(6000 + i))).status, 201);
    const over = await register(limited, cli(6100));
    assert.equal(over.status, 429);
    assert.ok(Number(over.headers.get('retry-after')) > 0);
    assert.equal(over.body.error, 'temporarily_unavailable');
    assert.ok(limited.logs.some((l) => l.event === 'rate_limit.hit' && l.limit === 'registrationPerSource' && l.key === 'source'));
  });

  test('token mode needs the initial access token; off mode has no endpoint', async () => {
    const without = await register(withToken, cli(7000));
    assert.equal(without.status, 401);
    assert.equal(without.body.error, 'invalid_token');
    const wrong = await register(withToken, cli(7000), { authorization: 'Bearer not-the-token-at-all-but-long-enough' });
    assert.equal(wrong.status, 401);
    const right = await register(withToken, cli(7000), { authorization: `Bearer ${TOKEN}` });
    assert.equal(right.status, 201);

    const disabled = await register(off, cli(7001));
    assert.equal(disabled.status, 404);
  });

  test('a registered client unused for unusedClientTtl expires; one whose tokens are used lives on', async () => {
    // ordering, not wall time: the idle registration is gone no sooner than its TTL after it was made,
    // while the other, used every 1.5 s (well inside the TTL however slow the machine), outlives it
    const registeredBefore = Date.now();
    const used = await register(shortLived, cli(8000, { client_name: 'Used' }));
    const idle = await register(shortLived, cli(8001, { client_name: 'Idle' }));
    const usedId = used.body.client_id as string;
    const idleId = idle.body.client_id as string;
    const tokens = await signIn(shortLived, usedId, 'http://127.0.0.1:8000/callback');
    let refreshToken = tokens.refresh_token!;
    const registrations = shortLived.server.store.model('Client');
    let idleGoneAt: number | undefined;
    while (idleGoneAt === undefined) {
      await new Promise((r) => setTimeout(r, 1500));
      const answer = await refresh(shortLived, usedId, refreshToken);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      refreshToken = answer.body.refresh_token ?? refreshToken;
      // read from the store: an authorization request for the idle client would be a use of it
      if (!(await registrations.find(idleId))) idleGoneAt = Date.now();
      else assert.ok(Date.now() - registeredBefore < 4 * UNUSED_TTL_S * 1000, 'the idle client outlived its TTL by far');
    }
    assert.ok(idleGoneAt - registeredBefore >= UNUSED_TTL_S * 1000, `the idle client went ${idleGoneAt - registeredBefore} ms after registering, before its TTL`);
    assert.equal(await authorizationPageStatus(shortLived, idleId, 'http://127.0.0.1:8001/callback'), 400);
    assert.equal(await authorizationPageStatus(shortLived, usedId, 'http://127.0.0.1:8000/callback'), 303);

    const directory = await shortLived.server.store.clients.list();
    const record = directory.find((r) => r.clientId === usedId);
    assert.equal(record?.kind, 'dcr');
    assert.ok(record?.lastUsedAt && record.lastUsedAt > idleGoneAt - UNUSED_TTL_S * 1000, 'the used client was used within its TTL');
    assert.equal(directory.find((r) => r.clientId === idleId), undefined);
  });
});
