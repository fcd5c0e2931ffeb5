/**
 * Discovery as MCP clients use it (part of #4 item 1): scopes_supported with the MCP servers'
 * scopes, CORS for browser-based clients (MCP-Protocol-Version allowed in preflight), the
 * path-inserted metadata URLs of an issuer with a path, 404 for unknown well-known paths, and
 * endpoint URLs built from the issuer whatever the request says its host is.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { startServer, type TestServer } from '../helpers/server.js';
import { serverFixture } from '../helpers/harness.js';
import { fixtureConfig, NOTES, SECRET } from '../helpers/fixtures.js';
import { parseConfig } from '../../src/config/load.js';

const TLS = new URL('../../../test/fixtures/tls/', import.meta.url);

const basic = `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}`;

describe('discovery and CORS', () => {
  const s = serverFixture('sqlite', { config: { corsOrigins: ['https://app.example.com'] } });

  it('scopes_supported lists the MCP servers’ scopes; both documents agree on the issuer', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const meta = (await (await fetch(s.t.url(path))).json()) as { issuer: string; scopes_supported: string[]; token_endpoint_auth_methods_supported: string[] };
      assert.equal(meta.issuer, s.t.issuer, path);
      for (const scope of ['openid', 'notes:read', 'notes:write', 'notes:delete', 'calendar:read']) assert.ok(meta.scopes_supported.includes(scope), `${path}: ${scope}`);
      for (const method of ['none', 'private_key_jwt', 'client_secret_basic']) assert.ok(meta.token_endpoint_auth_methods_supported.includes(method), method);
    }
  });

  it('response_types_supported contains code; both documents name the authorization and token endpoints, which answer there', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const meta = (await (await fetch(s.t.url(path))).json()) as Record<string, unknown>;
      assert.ok(Array.isArray(meta.response_types_supported) && meta.response_types_supported.includes('code'), `${path}: ${JSON.stringify(meta.response_types_supported)}`);
      assert.equal(typeof meta.authorization_endpoint, 'string', `${path}: authorization_endpoint`);
      assert.equal(typeof meta.token_endpoint, 'string', `${path}: token_endpoint`);
      // the authorization endpoint takes a code request (on to sign-in), the token endpoint issues a token
      const authorize = new URL(meta.authorization_endpoint as string);
      authorize.search = new URLSearchParams({
        client_id: 'web-app',
        response_type: 'code',
        redirect_uri: 'http://127.0.0.1:9/callback',
        scope: 'notes:read',
        resource: NOTES,
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      }).toString();
      const started = await fetch(authorize, { redirect: 'manual' });
      assert.equal(started.status, 303, `${path}: GET authorization_endpoint`);
      assert.match(started.headers.get('location') ?? '', /\/interaction\//, `${path}: on to the sign-in`);
      const issued = await fetch(meta.token_endpoint as string, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
      });
      assert.equal(issued.status, 200, `${path}: POST token_endpoint`);
    }
  });

  it('unknown well-known paths are 404, never 5xx', async () => {
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/unknown', '/.well-known/oauth-authorization-server/nope']) {
      assert.equal((await fetch(s.t.url(path))).status, 404, path);
    }
  });

  it('CORS: Access-Control-Allow-Origin on GET of both metadata documents, POST /token and POST /register; every preflight allows MCP-Protocol-Version', async () => {
    const origin = 'https://app.example.com';
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const res = await fetch(s.t.url(path), { headers: { origin, 'mcp-protocol-version': '2025-11-25' } });
      assert.equal(res.status, 200, path);
      assert.ok(['*', origin].includes(res.headers.get('access-control-allow-origin') ?? ''), `${path}: ACAO ${res.headers.get('access-control-allow-origin')}`);
    }
    const token = await fetch(s.t.url('/token'), {
      method: 'POST',
      headers: { origin, 'mcp-protocol-version': '2025-11-25', 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
    });
    assert.equal(token.status, 200);
    assert.equal(token.headers.get('access-control-allow-origin'), origin, 'POST /token');
    const registration = await fetch(s.t.url('/register'), {
      method: 'POST',
      headers: { origin, 'mcp-protocol-version': '2025-11-25', 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'Browser Agent', redirect_uris: [`${origin}/cb`], token_endpoint_auth_method: 'none' }),
    });
    assert.equal(registration.status, 201);
    assert.ok(['*', origin].includes(registration.headers.get('access-control-allow-origin') ?? ''), 'POST /register');

    const preflights: [string, string][] = [
      ['/.well-known/oauth-authorization-server', 'GET'],
      ['/.well-known/openid-configuration', 'GET'],
      ['/token', 'POST'],
      ['/register', 'POST'],
    ];
    for (const [path, method] of preflights) {
      const preflight = await fetch(s.t.url(path), {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'content-type, mcp-protocol-version' },
      });
      assert.equal(preflight.status, 204, path);
      assert.ok(['*', origin].includes(preflight.headers.get('access-control-allow-origin') ?? ''), `${path}: preflight ACAO`);
      assert.match(preflight.headers.get('access-control-allow-methods') ?? '', new RegExp(method), `${path}: preflight methods`);
      assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /(^|,)\s*mcp-protocol-version\s*(,|$)/i, `${path}: preflight headers`);
    }
  });

  it('CORS: preflights allow MCP-Protocol-Version; an allowed origin may call the token endpoint, another may not', async () => {
    const preflight = await fetch(s.t.url('/.well-known/oauth-authorization-server'), {
      method: 'OPTIONS',
      headers: { origin: 'https://anything.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'mcp-protocol-version' },
    });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /mcp-protocol-version/i);
    const token = (origin: string) =>
      fetch(s.t.url('/token'), {
        method: 'POST',
        headers: { origin, 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
      });
    const allowed = await token('https://app.example.com');
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com');
    const refused = await token('https://evil.example.com');
    assert.equal(refused.status, 400);
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
  });
});

describe('an issuer with a path', () => {
  const s = serverFixture('sqlite', { issuerPath: '/tenant' });

  it('answers at every URL MCP clients try, with one byte-identical issuer', async () => {
    const origin = new URL(s.t.issuer).origin;
    assert.equal(s.t.issuer, `${origin}/tenant`);
    for (const path of ['/.well-known/oauth-authorization-server/tenant', '/.well-known/openid-configuration/tenant', '/tenant/.well-known/openid-configuration', '/tenant/.well-known/oauth-authorization-server']) {
      // served there, not redirected to another URL
      const res = await fetch(`${origin}${path}`, { redirect: 'manual' });
      assert.equal(res.status, 200, path);
      const meta = (await res.json()) as { issuer: string; token_endpoint: string };
      assert.equal(meta.issuer, s.t.issuer, path);
      assert.equal(meta.token_endpoint, `${s.t.issuer}/token`);
    }
    const issued = await fetch(`${s.t.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
    });
    assert.equal(issued.status, 200);
  });
});

describe('an https issuer', () => {
  // the server's app on a real TLS listener (the tests' CA, test/fixtures/tls), its issuer https://127.0.0.1:<port>
  let tls: HttpsServer;
  let t: TestServer;
  let issuer = '';

  before(async () => {
    tls = createHttpsServer({ key: readFileSync(new URL('localhost.key', TLS)), cert: readFileSync(new URL('localhost.pem', TLS)) });
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    issuer = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
    t = await startServer({ store: 'sqlite', config: { issuer } });
    tls.on('request', t.server.app.callback());
  });
  after(async () => {
    tls?.closeAllConnections();
    await new Promise<void>((resolve) => (tls ? tls.close(() => resolve()) : resolve()));
    await t?.stop();
  });

  it('HTTPS endpoints: every endpoint in both documents is https at the issuer and answers over TLS; a non-loopback http issuer is refused', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const meta = (await (await fetch(`${issuer}${path}`)).json()) as Record<string, unknown>;
      assert.equal(meta.issuer, issuer, path);
      const endpoints = urls(meta).filter((url) => url !== issuer);
      assert.ok(endpoints.length >= 8, `${path}: ${JSON.stringify(endpoints)}`);
      for (const url of endpoints) {
        assert.equal(new URL(url).protocol, 'https:', `${path}: ${url}`);
        assert.ok(url.startsWith(`${issuer}/`), `${path}: ${url}`);
      }
      const issued = await fetch(meta.token_endpoint as string, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
      });
      assert.equal(issued.status, 200, `${path}: the token endpoint over TLS`);
    }

    // the configuration: https, or http only on a loopback host (or with the explicit dangerous switch)
    const config = (extra: Record<string, unknown>) => parseConfig({ ...fixtureConfig(), ...extra });
    for (const refused of ['http://auth.example.com', 'http://10.0.0.5:4000', 'http://auth.example.com/tenant']) {
      assert.throws(() => config({ issuer: refused }), /issuer: must be https/, refused);
    }
    for (const allowed of ['https://auth.example.com', 'http://127.0.0.1:4000', 'http://localhost:4000', 'http://[::1]:4000']) {
      assert.equal(config({ issuer: allowed }).issuer, allowed);
    }
    assert.equal(config({ issuer: 'http://auth.example.com', dangerouslyAllowHttpIssuer: true }).issuer, 'http://auth.example.com');
  });
});

/** GET or POST `path` at the server's socket with the given request target and headers (Host included). */
function raw(t: TestServer, target: string, headers: Record<string, string>, body?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const { hostname, port } = new URL(t.issuer);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: target, method: body ? 'POST' : 'GET', headers, setHost: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Every URL-valued member of a metadata document. */
function urls(meta: Record<string, unknown>): string[] {
  return Object.values(meta).filter((v): v is string => typeof v === 'string' && /^https?:/.test(v));
}

for (const issuerPath of ['', '/tenant']) {
  describe(`endpoint URLs come from the issuer, never the request (issuer path "${issuerPath}")`, () => {
    // behind a trusted proxy, too: X-Forwarded-Host must not name the endpoints either
    const s = serverFixture('sqlite', { issuerPath, config: { trustProxy: true } });
    const wellKnown = `${issuerPath}/.well-known/oauth-authorization-server`;

    it('a forged Host, X-Forwarded-Host or absolute-form target changes no URL of the metadata or the device grant', async () => {
      const { host } = new URL(s.t.issuer);
      const attempts: [string, string, Record<string, string>][] = [
        ['Host', wellKnown, { host: 'evil.example' }],
        ['X-Forwarded-Host and -Proto', wellKnown, { host, 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' }],
        ['absolute-form target', `http://evil.example${wellKnown}`, { host }],
      ];
      for (const [label, target, headers] of attempts) {
        const { status, json } = await raw(s.t, target, headers);
        assert.equal(status, 200, label);
        assert.ok(urls(json).length >= 8, `${label}: the document has its endpoints`);
        for (const url of urls(json)) assert.ok(url.startsWith(`${s.t.issuer}/`) || url === s.t.issuer, `${label}: ${url}`);
        const device = await raw(s.t, `${issuerPath}/device/auth`, { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, `client_id=tv-app&scope=notes%3Aread&resource=${encodeURIComponent(NOTES)}`);
        assert.equal(device.status, 200, `${label}: ${JSON.stringify(device.json)}`);
        for (const name of ['verification_uri', 'verification_uri_complete']) {
          assert.ok(String(device.json[name]).startsWith(`${s.t.issuer}/device`), `${label}: ${name} ${String(device.json[name])}`);
        }
      }
    });
  });
}
