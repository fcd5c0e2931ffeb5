/**
 * The MCP TypeScript SDK client, unregistered, against the example notes MCP server:
 * 401 → protected resource metadata → our AS metadata → dynamic client registration
 * (RFC 7591, public client, no client ID metadata document) → PKCE with `resource` → a
 * person signs in and consents → the code arrives at the client's own loopback listener →
 * finishAuth → reconnect → tools work.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { OAuthClientInformationMixed } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { TestServer } from '../helpers/server.js';
import { exampleNotesResource } from '../helpers/fixtures.js';
import { jwt } from '../helpers/rp.js';
import {
  LoopbackHostProvider,
  LoopbackRedirect,
  connectAfterSignIn,
  connectClient,
  listNotes,
  publicClientMetadata,
  recordingFetch,
  startProtectedNotes,
  textOf,
  toolNames,
  type Exchange,
  type NotesServer,
  type ToolResult,
} from '../helpers/mcp-client.js';

/** An MCP host with no client_id: everything in memory; registers itself by DCR. */
class DcrHostProvider extends LoopbackHostProvider {
  get clientMetadata() {
    return publicClientMetadata('SDK DCR host (test)', this.loopback.redirectUri);
  }

  /** what the SDK saved after registering */
  get registrations(): OAuthClientInformationMixed[] {
    return this.savedClientInformation;
  }
}

let as: TestServer;
let notes: NotesServer;
let mcpUrl: string;
const loopback = new LoopbackRedirect();

/** Every HTTP exchange the SDK client made, in order; registration bodies kept. */
const exchanges: Exchange[] = [];
const fetchFn = recordingFetch(exchanges, '/register');

before(async () => {
  await loopback.start();
  // no static clients at all: the SDK host can only get in by registering itself
  ({ notes, as } = await startProtectedNotes((url) => ({ store: 'sqlite', config: { resources: [exampleNotesResource(url)], clients: [] } })));
  mcpUrl = notes.url;
});

after(async () => {
  await notes?.stop();
  await as?.stop();
  await loopback.stop();
});

describe('MCP SDK client with dynamic client registration → notes MCP server ← mcp-authz', () => {
  const provider = new DcrHostProvider(loopback);
  let client: Client;

  it('registers itself, signs in with PKCE and resource, and connects', async () => {
    client = await connectAfterSignIn('sdk-dcr-test', mcpUrl, provider, fetchFn);

    const sequence = exchanges.map((e) => `${e.method} ${e.url} ${e.status}`);
    const origin = new URL(mcpUrl).origin;
    assert.deepEqual(sequence.slice(0, 4), [
      `POST ${mcpUrl} 401`,
      `GET ${origin}/.well-known/oauth-protected-resource/mcp 200`,
      `GET ${as.issuer}/.well-known/oauth-authorization-server 200`,
      `POST ${as.issuer}/register 201`,
    ]);
    assert.ok(sequence.includes(`POST ${as.issuer}/token 200`), sequence.join('\n'));
    assert.equal(sequence.at(-1)?.startsWith(`POST ${mcpUrl} 20`), true, sequence.join('\n'));
  });

  it('the saved registration is a public client: a client_id and no client_secret', async () => {
    assert.equal(provider.registrations.length, 1, 'registered exactly once');
    const info = provider.registrations[0]! as Record<string, unknown>;
    assert.equal(typeof info.client_id, 'string');
    assert.ok((info.client_id as string).length > 0);
    assert.equal(info.client_secret, undefined, `a secret was issued to a public client: ${JSON.stringify(info)}`);
    assert.equal(info.token_endpoint_auth_method, 'none');
    assert.deepEqual(info.redirect_uris, [loopback.redirectUri]);

    // what went over the wire, as the SDK sent it and as we answered
    const registration = exchanges.find((e) => e.url === `${as.issuer}/register`)!;
    const sent = JSON.parse(registration.requestBody ?? '{}') as Record<string, unknown>;
    assert.equal(sent.token_endpoint_auth_method, 'none');
    assert.equal(sent.scope, 'notes:read notes:write notes:delete notes:share', 'the SDK registers with the PRM scopes_supported');
    const answered = JSON.parse(registration.responseBody ?? '{}') as Record<string, unknown>;
    assert.equal(answered.client_id, info.client_id);
    assert.equal('client_secret' in answered, false);
    assert.equal('registration_access_token' in answered, false, 'RFC 7592 management is not offered');

    // the AS knows the client from now on
    const authUrl = provider.authorizationUrls[0]!;
    assert.equal(authUrl.searchParams.get('client_id'), info.client_id);
  });

  it('the authorization request carries PKCE S256 and the MCP URL as resource', () => {
    assert.equal(provider.authorizationUrls.length, 1);
    const url = provider.authorizationUrls[0]!;
    assert.equal(url.origin + url.pathname, `${as.issuer}/auth`);
    assert.equal(url.searchParams.get('resource'), mcpUrl);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(url.searchParams.get('redirect_uri'), loopback.redirectUri);
    assert.equal(loopback.received.length, 1, 'the loopback listener got exactly one authorization response');
  });

  it("the access token is for the notes server's canonical URL and names the registered client", () => {
    const { payload } = jwt(provider.accessToken);
    assert.ok(payload.aud === mcpUrl || (Array.isArray(payload.aud) && payload.aud.length === 1 && payload.aud[0] === mcpUrl), `aud is ${JSON.stringify(payload.aud)}`);
    assert.equal(payload.iss, as.issuer);
    assert.equal(payload.client_id, provider.registrations[0]!.client_id);
    assert.ok(typeof payload.sub === 'string' && payload.sub.length > 0, 'a person is the subject');
    // consent as preselected: notes:delete is dangerous and was not granted
    assert.deepEqual(String(payload.scope).split(' ').sort(), ['notes:read', 'notes:write']);
  });

  it('tool calls run on the notes server with that token', async () => {
    assert.deepEqual(await toolNames(client), ['add_note', 'list_notes', 'read_note']);
    const text = `dcr note ${randomUUID()}`;
    const added = await client.callTool({ name: 'add_note', arguments: { text } });
    assert.ok(!(added as ToolResult).isError, textOf(added));
    const { id } = JSON.parse(textOf(added)) as { id: string };
    const listed = await listNotes<{ id: string; text: string }>(client);
    assert.deepEqual(
      listed.notes.map((n) => [n.id, n.text]),
      [[id, text]],
    );
  });

  it('a new connection reuses the registration and the token: no second registration or sign-in', async () => {
    const before = exchanges.length;
    const again = await connectClient('sdk-dcr-test', mcpUrl, provider, fetchFn);
    try {
      const listed = await listNotes(again);
      assert.equal(listed.notes.length, 1);
    } finally {
      await again.close();
      await client.close();
    }
    const later = exchanges.slice(before);
    // only the MCP server is talked to (its GET /mcp 405 is the SDK probing for an SSE stream)
    assert.ok(
      later.every((e) => e.url === mcpUrl && e.status !== 401 && e.status !== 403),
      later.map((e) => `${e.method} ${e.url} ${e.status}`).join('\n'),
    );
    assert.equal(provider.registrations.length, 1);
    assert.equal(provider.authorizationUrls.length, 1);
  });
});
