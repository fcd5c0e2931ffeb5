/**
 * Tokens without a person (client credentials) — the review's critical finding: a client
 * nobody configured, registered dynamically or described by a metadata document, asked for
 * every scope of an MCP server and got them all, dangerous and admin-only ones included.
 *
 * Each path of the attack is tried against a server with the default policy and shown
 * refused with no token issued: DCR in open mode, DCR with the initial access token, a
 * metadata document with `private_key_jwt` and an inline `jwks`, a metadata document with
 * no client authentication. Where the operator explicitly allows such clients, their tokens
 * stay within the configured ceiling, never carry a dangerous or restricted scope unless the
 * `allow` list names the client, and a client allowed once is refused at the token endpoint
 * when the policy no longer allows it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { startServer, type TestServer } from '../helpers/server.js';
import { SECRET } from '../helpers/fixtures.js';
import { jwt } from '../helpers/rp.js';
import { createVerifier } from '../../src/verifier/index.js';
import type { ConfigInput } from '../../src/config/schema.js';

const TLS = new URL('../../../test/fixtures/tls/', import.meta.url);
const MCP = 'https://vault.example.com/mcp';
const EVERY_SCOPE = 'vault:read vault:write vault:delete vault:admin vault:purge';
const REGISTRATION_TOKEN = 'an-initial-access-token-that-is-long-enough-0123';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid: 'doc-key', alg: 'ES256', use: 'sig' };

/** Serves machine clients' metadata documents over https on localhost (the tests' CA). */
class Documents {
  base = '';
  readonly server: Server = createHttpsServer({ key: readFileSync(new URL('localhost.key', TLS)), cert: readFileSync(new URL('localhost.pem', TLS)) });
  constructor() {
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const id = this.url(req.url ?? '/');
      const common = { client_id: id, client_name: 'Helpful agent', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
      const docs: Record<string, unknown> = {
        '/m/signed.json': { ...common, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk] } },
        '/m/open.json': { ...common, token_endpoint_auth_method: 'none' },
      };
      const doc = docs[req.url ?? ''];
      res.writeHead(doc ? 200 : 404, { 'content-type': 'application/json' });
      res.end(doc ? JSON.stringify(doc) : '');
    });
  }
  async listen() {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `https://localhost:${(this.server.address() as AddressInfo).port}`;
  }
  url(path: string) {
    return `${this.base}${path}`;
  }
  close() {
    this.server.closeAllConnections();
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function vaultConfig(named: string[]): Partial<ConfigInput> {
  return {
    resources: [
      {
        uri: MCP,
        name: 'Vault',
        scopes: {
          'vault:read': { description: 'Read secrets' },
          'vault:write': { description: 'Write secrets' },
          'vault:delete': { description: 'Delete secrets', dangerous: true },
          'vault:admin': { description: 'Administer the vault', allow: ['role:admin'] },
          'vault:purge': { description: 'Purge everything', dangerous: true, allow: ['role:admin', ...named.map((id) => `client:${id}`)] },
        },
      },
    ],
    clients: [
      { client_id: 'svc', client_secret: SECRET, grant_types: ['client_credentials'] },
      { client_id: 'cleaner', client_secret: SECRET, grant_types: ['client_credentials'] },
    ],
    // the documents are served from loopback in this test
    cimd: { dangerouslyAllowPrivateNetwork: true },
  };
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function token(t: TestServer, body: Record<string, string>, authorization?: string) {
  const res = await fetch(t.url('/token'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: MCP, scope: EVERY_SCOPE, ...body }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

async function register(t: TestServer, metadata: Record<string, unknown>, authorization?: string) {
  const res = await fetch(t.url('/register'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify(metadata),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

const MACHINE_REGISTRATION = {
  client_name: 'Helpful agent',
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
};

function assertion(t: TestServer, clientId: string) {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'doc-key' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(t.issuer)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('2m')
    .sign(privateKey);
}

async function signedToken(t: TestServer, clientId: string) {
  return token(t, {
    client_id: clientId,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await assertion(t, clientId),
  });
}

const scopesOf = (accessToken: string) => String(jwt(accessToken).payload.scope ?? '').split(' ').filter(Boolean).sort();

describe('tokens without a person', () => {
  const docs = new Documents();
  let defaults: TestServer;
  let tokenMode: TestServer;
  let allowing: TestServer;
  let allowingDir: string;

  before(async () => {
    await docs.listen();
    defaults = await startServer({ store: 'sqlite', config: vaultConfig(['cleaner']) });
    tokenMode = await startServer({ store: 'sqlite', config: { ...vaultConfig([]), registration: { mode: 'token', initialAccessToken: REGISTRATION_TOKEN } } });
    allowingDir = mkdtempSync(join(tmpdir(), 'mcp-authz-machine-'));
    allowing = await startServer({
      store: 'sqlite',
      dataDir: allowingDir,
      config: {
        ...vaultConfig([docs.url('/m/signed.json')]),
        registration: { clientCredentials: { scopes: ['vault:read'] } },
        cimd: { dangerouslyAllowPrivateNetwork: true, clientCredentials: [{ domain: 'localhost', scopes: ['vault:read', 'vault:purge'] }] },
      },
    });
  });

  after(async () => {
    await Promise.all([defaults?.stop(), tokenMode?.stop(), allowing?.stop()]);
    await docs.close();
    rmSync(allowingDir, { recursive: true, force: true });
  });

  test('DCR, open mode (the default): registering client_credentials is invalid_client_metadata, and no client exists', async () => {
    const res = await register(defaults, MACHINE_REGISTRATION);
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_client_metadata');
    assert.match(res.body.error_description ?? '', /client_credentials/);
    assert.equal(res.body.client_secret, undefined);
    assert.ok(!(await defaults.server.store.clients.list()).some((c) => c.kind === 'dcr'), 'no client was registered');
    assert.ok(defaults.logs.some((l) => l.event === 'client.registration_rejected' && l.error === 'invalid_client_metadata'));
  });

  test('DCR with the initial access token: refused the same way', async () => {
    const res = await register(tokenMode, MACHINE_REGISTRATION, `Bearer ${REGISTRATION_TOKEN}`);
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_client_metadata');
    // a client for people is still registered with that token
    const people = await register(tokenMode, { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' }, `Bearer ${REGISTRATION_TOKEN}`);
    assert.equal(people.status, 201);
  });

  test('a metadata document with private_key_jwt, an inline jwks and client_credentials: refused, no token', async () => {
    const id = docs.url('/m/signed.json');
    const res = await signedToken(defaults, id);
    assert.ok(res.status === 400 || res.status === 401, JSON.stringify(res.body));
    assert.equal(res.body.error, 'invalid_client');
    assert.equal(res.body.access_token, undefined);
    assert.ok(
      defaults.logs.some((l) => l.event === 'cimd.rejected' && l.clientId === id && /client_credentials/.test(String(l.reason))),
      'the refusal is logged with its reason',
    );
  });

  test('a metadata document with no client authentication and client_credentials: refused, no token', async () => {
    const res = await token(defaults, { client_id: docs.url('/m/open.json') });
    assert.ok(res.status === 400 || res.status === 401, JSON.stringify(res.body));
    assert.ok(['invalid_client', 'unauthorized_client'].includes(res.body.error!), JSON.stringify(res.body));
    assert.equal(res.body.access_token, undefined);
  });

  test('a configured client asking for every scope gets neither dangerous nor restricted ones; the verifier refuses it for such a tool', async () => {
    const res = await token(defaults, {}, basic('svc', SECRET));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(scopesOf(res.body.access_token!), ['vault:read', 'vault:write']);

    const verifier = createVerifier({ issuer: defaults.issuer, resource: MCP });
    await assert.rejects(verifier.authenticate(`Bearer ${res.body.access_token}`, { requiredScopes: ['vault:delete'] }), { code: 'ERR_INSUFFICIENT_SCOPE' });
    await assert.rejects(verifier.authenticate(`Bearer ${res.body.access_token}`, { requiredScopes: ['vault:admin'] }), { code: 'ERR_INSUFFICIENT_SCOPE' });
    assert.ok(await verifier.authenticate(`Bearer ${res.body.access_token}`, { requiredScopes: ['vault:read'] }));
  });

  test('a dangerous scope whose allow list names the client is issued to that client only', async () => {
    const named = await token(defaults, {}, basic('cleaner', SECRET));
    assert.deepEqual(scopesOf(named.body.access_token!), ['vault:purge', 'vault:read', 'vault:write']);
  });

  test('where the operator allows registered machine clients: the configured ceiling, nothing dangerous or restricted', async () => {
    const res = await register(allowing, MACHINE_REGISTRATION);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const issued = await token(allowing, {}, basic(res.body.client_id!, res.body.client_secret!));
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    assert.deepEqual(scopesOf(issued.body.access_token!), ['vault:read']);
    // and never one that does not authenticate
    const unauthenticated = await register(allowing, { ...MACHINE_REGISTRATION, token_endpoint_auth_method: 'none' });
    assert.equal(unauthenticated.status, 400);
    assert.equal(unauthenticated.body.error, 'invalid_client_metadata');
  });

  test('where a document domain is allowed: its ceiling, and a dangerous scope only because the allow list names the document', async () => {
    const res = await signedToken(allowing, docs.url('/m/signed.json'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(scopesOf(res.body.access_token!), ['vault:purge', 'vault:read']);
    // a document of the same domain that does not authenticate still cannot get a token
    const open = await token(allowing, { client_id: docs.url('/m/open.json') });
    assert.equal(open.body.access_token, undefined, JSON.stringify(open.body));
    assert.equal(open.body.error, 'invalid_client');
    assert.ok(allowing.logs.some((l) => l.event === 'cimd.rejected' && /needs client authentication/.test(String(l.reason))));
  });

  test('a client registered while allowed is unauthorized_client at the token endpoint once the policy no longer allows it', async () => {
    const res = await register(allowing, MACHINE_REGISTRATION);
    assert.equal(res.status, 201);
    await allowing.stop();
    allowing = await startServer({ store: 'sqlite', dataDir: allowingDir, config: vaultConfig([]) });
    const refused = await token(allowing, {}, basic(res.body.client_id!, res.body.client_secret!));
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'unauthorized_client');
    assert.equal(refused.body.access_token, undefined);
  });
});
