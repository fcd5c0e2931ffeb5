/**
 * The notes example end to end: a real authorization server, the example MCP server with
 * the verifier (revocation on), and the MCP SDK client doing the whole OAuth dance
 * (401 → protected resource metadata → AS metadata → authorize with `resource` and PKCE →
 * token), then per-tool scopes (tools/list filtered, 403 insufficient_scope before a tool
 * runs), per-person notes, and a revoked token refused once the revocation feed pushes it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { TestServer } from '../helpers/server.js';
import { exampleNotesResource } from '../helpers/fixtures.js';
import {
  connectAfterSignIn,
  listNotes,
  recordingFetch,
  RegisteredHostProvider,
  startProtectedNotes,
  textOf,
  toolNames,
  type Exchange,
  type NotesServer,
  type ToolResult,
} from '../helpers/mcp-client.js';
import { PUSH_BOUND_MS } from '../helpers/timing.js';

const REDIRECT = 'http://127.0.0.1:9/callback';
const CLIENT_ID = 'mcp-host';

/** An MCP host pre-registered as `mcp-host` (consent as the page preselects: the dangerous scopes stay unticked). */
const host = (username: string) => new RegisteredHostProvider(username, { clientId: CLIENT_ID, redirectUri: REDIRECT });

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

let as: TestServer;
let notes: NotesServer;
let origin: string;
let mcpUrl: string;

/** Every HTTP exchange the SDK client made (method, URL, status), in order. */
const exchanges: Exchange[] = [];
const fetchFn = recordingFetch(exchanges);

/** The SDK client's whole flow: connect → UnauthorizedError → finishAuth(code) → connect again. */
function connect(provider: RegisteredHostProvider): Promise<Client> {
  return connectAfterSignIn('notes-test', mcpUrl, provider, fetchFn);
}

/** A raw JSON-RPC POST to the example server. */
function post(body: unknown, token?: string): Promise<Response> {
  return fetch(mcpUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
}
const toolCall = (name: string, args: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } });

before(async () => {
  ({ notes, as } = await startProtectedNotes(
    (url) => ({
      store: 'sqlite',
      users: { alice: [], bob: [] },
      config: {
        resources: [exampleNotesResource(url)],
        clients: [{ client_id: CLIENT_ID, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] }],
      },
    }),
    { revocation: true },
  ));
  origin = notes.origin;
  mcpUrl = notes.url;
});

after(async () => {
  await notes?.stop();
  await as?.stop();
});

describe('notes example: MCP SDK client → example server (verifier) ← mcp-authz', () => {
  const alice = host('alice');
  let aliceClient: Client;
  let noteId: string;

  it('discovers the authorization server from a 401 and gets a token for the MCP URL', async () => {
    aliceClient = await connect(alice);

    const [unauthorized, prm, asMetadata] = exchanges;
    assert.deepEqual(unauthorized, { method: 'POST', url: mcpUrl, status: 401 });
    assert.deepEqual(prm, { method: 'GET', url: `${origin}/.well-known/oauth-protected-resource/mcp`, status: 200 });
    assert.deepEqual(asMetadata, { method: 'GET', url: `${as.issuer}/.well-known/oauth-authorization-server`, status: 200 });
    assert.ok(
      exchanges.some((e) => e.method === 'POST' && e.url === `${as.issuer}/token` && e.status === 200),
      'the code was exchanged at the token endpoint',
    );
    assert.ok(!exchanges.some((e) => e.url.startsWith(`${as.issuer}/reg`)), 'a pre-registered client does not register');
    assert.ok(exchanges.some((e) => e.method === 'POST' && e.url === mcpUrl && e.status === 200), 'initialize succeeded with the token');

    assert.equal(alice.authorizationUrls.length, 1);
    const authUrl = alice.authorizationUrls[0]!;
    assert.equal(authUrl.searchParams.get('resource'), mcpUrl);
    assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(authUrl.searchParams.get('code_challenge'));
    assert.equal(authUrl.searchParams.get('client_id'), CLIENT_ID);
    // the scopes come from the metadata's scopes_supported
    assert.equal(authUrl.searchParams.get('scope'), 'notes:read notes:write notes:delete notes:share');

    const token = claims(alice.accessToken);
    assert.ok(token.aud === mcpUrl || (Array.isArray(token.aud) && token.aud.includes(mcpUrl)), `aud is ${JSON.stringify(token.aud)}`);
    assert.equal(token.iss, as.issuer);
    // consent as preselected: the dangerous scope was not granted
    assert.deepEqual(String(token.scope).split(' ').sort(), ['notes:read', 'notes:write']);
  });

  it('publishes the protected resource metadata', async () => {
    const res = await fetch(`${origin}/.well-known/oauth-protected-resource/mcp`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      resource: mcpUrl,
      authorization_servers: [as.issuer],
      bearer_methods_supported: ['header'],
      scopes_supported: ['notes:read', 'notes:write', 'notes:delete', 'notes:share'],
      resource_name: 'Notes (example)',
    });
  });

  it('tools/list shows only the tools the token may call, marked cacheScope "private"', async () => {
    assert.deepEqual(await toolNames(aliceClient), ['add_note', 'list_notes', 'read_note']);
    const res = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }, alice.accessToken);
    const { result } = (await res.json()) as { result: { cacheScope?: string; ttlMs?: number } };
    assert.equal(result.cacheScope, 'private');
    assert.equal(result.ttlMs, 0);
  });

  it('add_note then list_notes and read_note', async () => {
    const added = await aliceClient.callTool({ name: 'add_note', arguments: { text: 'buy oat milk' } });
    assert.ok(!(added as ToolResult).isError, textOf(added));
    noteId = (JSON.parse(textOf(added)) as { id: string }).id;
    const listed = await listNotes<{ id: string; text: string }>(aliceClient);
    assert.deepEqual(
      listed.notes.map((n) => [n.id, n.text]),
      [[noteId, 'buy oat milk']],
    );
    const read = JSON.parse(textOf(await aliceClient.callTool({ name: 'read_note', arguments: { id: noteId } }))) as { text: string };
    assert.equal(read.text, 'buy oat milk');
  });

  it('delete_note without notes:delete → 403 insufficient_scope before the tool runs', async () => {
    const res = await post(toolCall('delete_note', { id: noteId }), alice.accessToken);
    assert.equal(res.status, 403);
    const challenge = res.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer /);
    assert.ok(challenge.includes('error="insufficient_scope"'), challenge);
    assert.ok(challenge.includes('scope="notes:delete"'), challenge);
    assert.ok(challenge.includes(`resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`), challenge);
    await res.arrayBuffer();
    const listed = await listNotes<{ id: string }>(aliceClient);
    assert.deepEqual(
      listed.notes.map((n) => n.id),
      [noteId],
      'the note still exists',
    );
  });

  it('no token → 401 with resource_metadata and no error; a bad token → 401 invalid_token', async () => {
    const res = await post(toolCall('list_notes'));
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    assert.ok(challenge.includes(`resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`), challenge);
    assert.doesNotMatch(challenge, /error=/);
    await res.arrayBuffer();

    const forged = `${alice.accessToken.slice(0, -6)}AAAAAA`;
    const bad = await post(toolCall('list_notes'), forged);
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/);
    await bad.arrayBuffer();
  });

  it('GET and DELETE /mcp → 405 (stateless server)', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(mcpUrl, { method, headers: { authorization: `Bearer ${alice.accessToken}` } });
      assert.equal(res.status, 405, method);
      await res.arrayBuffer();
    }
  });

  it("a second person sees only their own notes, and cannot read the first person's", async () => {
    const bob = host('bob');
    const bobClient = await connect(bob);
    try {
      assert.notEqual(claims(bob.accessToken).sub, claims(alice.accessToken).sub);
      const empty = await listNotes(bobClient);
      assert.deepEqual(empty.notes, []);
      const stolen = await bobClient.callTool({ name: 'read_note', arguments: { id: noteId } });
      assert.equal((stolen as ToolResult).isError, true);
      await bobClient.callTool({ name: 'add_note', arguments: { text: "bob's secret" } });
      const aliceNotes = await listNotes<{ text: string }>(aliceClient);
      assert.deepEqual(
        aliceNotes.notes.map((n) => n.text),
        ['buy oat milk'],
      );
    } finally {
      await bobClient.close();
    }
  });

  it('a token revoked at the authorization server is refused (the revocation feed)', async () => {
    await aliceClient.close();
    const token = alice.accessToken;
    const before = await post(toolCall('list_notes'), token);
    assert.equal(before.status, 200);
    await before.arrayBuffer();

    const metadata = (await (await fetch(`${as.issuer}/.well-known/oauth-authorization-server`)).json()) as { revocation_endpoint: string };
    const revoked = await fetch(metadata.revocation_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: 'access_token', client_id: CLIENT_ID }),
    });
    assert.equal(revoked.status, 200, await revoked.text());
    const revokedAt = Date.now();

    let res: Response;
    for (;;) {
      res = await post(toolCall('list_notes'), token);
      if (res.status !== 200 || Date.now() - revokedAt > PUSH_BOUND_MS) break;
      await res.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const elapsed = Date.now() - revokedAt;
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/);
    await res.arrayBuffer();
    assert.ok(elapsed < PUSH_BOUND_MS, `refused after ${elapsed} ms`);
  });
});
