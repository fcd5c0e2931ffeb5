/**
 * Machine-to-machine MCP clients from the SDK ('@modelcontextprotocol/sdk/client/auth-extensions.js')
 * against the example notes MCP server: `ClientCredentialsProvider` (client_secret_basic)
 * and `PrivateKeyJwtProvider` (private_key_jwt with a key made here, its public JWK in the
 * static client's configuration). Each discovers us from the server's 401, gets a
 * client_credentials token for the notes server's URL, and calls tools.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider, PrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import type { TestServer } from '../helpers/server.js';
import { exampleNotesResource, SECRET } from '../helpers/fixtures.js';
import { jwt } from '../helpers/rp.js';
import { connectClient, listNotes, startProtectedNotes, textOf, toolNames, type NotesServer, type ToolResult } from '../helpers/mcp-client.js';

const BASIC_CLIENT = 'notes-batch';
const JWT_CLIENT = 'notes-signer';
const KID = 'notes-signer-1';

interface TokenRequest {
  authorization: string | null;
  body: URLSearchParams;
  status: number;
  response: Record<string, unknown>;
}

let as: TestServer;
let notes: NotesServer;
let mcpUrl: string;
let privateKeyPem: string;

/** Token endpoint requests the SDK made, with what we answered. */
const tokenRequests: TokenRequest[] = [];
const recordingFetch = async (input: string | URL, init?: RequestInit): Promise<Response> => {
  const res = await fetch(input, init);
  if (String(input) === `${as.issuer}/token`) {
    tokenRequests.push({
      authorization: new Headers(init?.headers).get('authorization'),
      body: new URLSearchParams(String(init?.body ?? '')),
      status: res.status,
      response: (await res.clone().json()) as Record<string, unknown>,
    });
  }
  return res;
};

function connect(provider: OAuthClientProvider): Promise<Client> {
  return connectClient('sdk-machine-test', mcpUrl, provider, recordingFetch);
}

before(async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  privateKeyPem = await exportPKCS8(privateKey);
  const { kty, ...jwk } = await exportJWK(publicKey);
  assert.equal(kty, 'EC');
  const publicJwk = { kty, ...jwk, kid: KID, alg: 'ES256', use: 'sig' };

  ({ notes, as } = await startProtectedNotes((url) => ({
    store: 'sqlite',
    config: {
      resources: [exampleNotesResource(url)],
      clients: [
        { client_id: BASIC_CLIENT, client_secret: SECRET, grant_types: ['client_credentials'], scope: 'notes:read notes:write', resources: [url] },
        {
          client_id: JWT_CLIENT,
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [publicJwk] },
          grant_types: ['client_credentials'],
          scope: 'notes:read',
          resources: [url],
        },
      ],
    },
  })));
  mcpUrl = notes.url;
});

after(async () => {
  await notes?.stop();
  await as?.stop();
});

describe('SDK ClientCredentialsProvider (client_secret_basic) → notes MCP server ← mcp-authz', () => {
  let provider: ClientCredentialsProvider;
  let client: Client;
  let noteId: string;
  const text = `nightly ${randomUUID()}`;

  it('gets a client_credentials token with HTTP Basic and the notes URL as resource, and connects', async () => {
    const before = tokenRequests.length;
    provider = new ClientCredentialsProvider({ clientId: BASIC_CLIENT, clientSecret: SECRET, scope: 'notes:read notes:write', expectedIssuer: as.issuer });
    client = await connect(provider);

    const requests = tokenRequests.slice(before);
    assert.equal(requests.length, 1);
    const [request] = requests;
    assert.equal(request!.status, 200, JSON.stringify(request!.response));
    assert.equal(request!.authorization, `Basic ${Buffer.from(`${BASIC_CLIENT}:${SECRET}`).toString('base64')}`);
    assert.equal(request!.body.get('grant_type'), 'client_credentials');
    assert.equal(request!.body.get('resource'), mcpUrl);
    assert.equal(request!.body.has('client_secret'), false, 'the secret travels only in the Authorization header');

    const token = provider.tokens()?.access_token;
    assert.ok(token);
    const { payload } = jwt(token);
    assert.equal(payload.aud, mcpUrl);
    assert.equal(payload.iss, as.issuer);
    assert.equal(payload.client_id, BASIC_CLIENT);
    assert.deepEqual(String(payload.scope).split(' ').sort(), ['notes:read', 'notes:write']);
  });

  it('sees the tools its scopes allow, adds a note and lists it', async () => {
    assert.deepEqual(await toolNames(client), ['add_note', 'list_notes', 'read_note']);
    const added = await client.callTool({ name: 'add_note', arguments: { text } });
    assert.ok(!(added as ToolResult).isError, textOf(added));
    noteId = (JSON.parse(textOf(added)) as { id: string }).id;
    const listed = await listNotes<{ id: string; text: string }>(client);
    assert.deepEqual(
      listed.notes.map((n) => [n.id, n.text]),
      [[noteId, text]],
    );
    await client.close();
  });

  it('a wrong secret gets no token and no connection', async () => {
    const before = tokenRequests.length;
    const wrong = new ClientCredentialsProvider({ clientId: BASIC_CLIENT, clientSecret: `${SECRET}-wrong`, scope: 'notes:read', expectedIssuer: as.issuer });
    await assert.rejects(connect(wrong), /invalid_client|client authentication failed/i);
    const requests = tokenRequests.slice(before);
    assert.ok(requests.length >= 1);
    assert.ok(requests.every((r) => r.status === 401 && r.response.error === 'invalid_client'), JSON.stringify(requests.map((r) => r.response)));
    assert.equal(wrong.tokens(), undefined);
  });
});

describe('SDK PrivateKeyJwtProvider (private_key_jwt) → notes MCP server ← mcp-authz', () => {
  let provider: PrivateKeyJwtProvider;
  let client: Client;

  it('authenticates with a signed assertion (aud = our issuer) and connects', async () => {
    const before = tokenRequests.length;
    provider = new PrivateKeyJwtProvider({ clientId: JWT_CLIENT, privateKey: privateKeyPem, algorithm: 'ES256', scope: 'notes:read', expectedIssuer: as.issuer });
    client = await connect(provider);

    const requests = tokenRequests.slice(before);
    assert.equal(requests.length, 1);
    const [request] = requests;
    assert.equal(request!.status, 200, JSON.stringify(request!.response));
    assert.equal(request!.authorization, null);
    assert.equal(request!.body.get('grant_type'), 'client_credentials');
    assert.equal(request!.body.get('resource'), mcpUrl);
    assert.equal(request!.body.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    const assertion = jwt(request!.body.get('client_assertion') ?? '');
    assert.equal(assertion.header.alg, 'ES256');
    assert.equal(assertion.payload.iss, JWT_CLIENT);
    assert.equal(assertion.payload.sub, JWT_CLIENT);
    assert.equal(assertion.payload.aud, as.issuer, 'the SDK addresses the assertion to the issuer, which we accept');

    const token = provider.tokens()?.access_token;
    assert.ok(token);
    const { payload } = jwt(token);
    assert.equal(payload.aud, mcpUrl);
    assert.equal(payload.client_id, JWT_CLIENT);
    assert.equal(payload.scope, 'notes:read');
  });

  it('sees only the read tools and its own (empty) notes', async () => {
    assert.deepEqual(await toolNames(client), ['list_notes', 'read_note']);
    const listed = await listNotes(client);
    assert.deepEqual(listed.notes, [], "another client's notes are not visible");
    await client.close();
  });

  it('an assertion signed with a key we do not know gets no token', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const before = tokenRequests.length;
    const impostor = new PrivateKeyJwtProvider({
      clientId: JWT_CLIENT,
      privateKey: await exportPKCS8(privateKey),
      algorithm: 'ES256',
      scope: 'notes:read',
      expectedIssuer: as.issuer,
    });
    await assert.rejects(connect(impostor), /invalid_client|client authentication failed/i);
    const requests = tokenRequests.slice(before);
    assert.ok(requests.length >= 1);
    assert.ok(requests.every((r) => r.status === 401 && r.response.error === 'invalid_client'), JSON.stringify(requests.map((r) => r.response)));
    assert.equal(impostor.tokens(), undefined);
  });
});
