/**
 * The MCP TypeScript SDK client, identified by a client ID metadata document, against the
 * example notes MCP server: 401 → protected resource metadata → our AS metadata (which
 * advertises `client_id_metadata_document_supported`) → no registration: the client_id is
 * the https URL of the client's own document, which the AS fetches → PKCE with `resource` →
 * a person signs in and consents (the page names the document's host) → the code arrives at
 * the client's loopback listener → finishAuth → reconnect → tools work.
 *
 * The document is served over real https on localhost (the tests' CA, test/fixtures/tls),
 * which only an AS with `cimd.dangerouslyAllowPrivateNetwork` fetches; an AS without it
 * refuses the same client, and says why in its log.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { OAuthClientMetadata } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { TestServer } from '../helpers/server.js';
import type { Page } from '../helpers/browser-driver.js';
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

const TLS = new URL('../../../test/fixtures/tls/', import.meta.url);
const DOCUMENT_PATH = '/oauth/client.json';
const CLIENT_NAME = 'SDK CIMD host (test)';

/** The client's own web presence: serves its metadata document over https on localhost, counting fetches. */
class DocumentHost {
  readonly hits = new Map<string, number>();
  readonly #server = createHttpsServer({ key: readFileSync(new URL('localhost.key', TLS)), cert: readFileSync(new URL('localhost.pem', TLS)) });
  base = '';

  constructor() {
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? '/';
      this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
      if (req.method !== 'GET' || path !== DOCUMENT_PATH) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.document));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.base = `https://localhost:${(this.#server.address() as AddressInfo).port}`;
  }

  get clientId(): string {
    return `${this.base}${DOCUMENT_PATH}`;
  }

  get host(): string {
    return new URL(this.base).host;
  }

  get fetches(): number {
    return this.hits.get(DOCUMENT_PATH) ?? 0;
  }

  /** redirect URIs without a port: the host listens on whatever loopback port it gets at run time */
  get document() {
    return { client_id: this.clientId, ...publicClientMetadata(CLIENT_NAME, 'http://127.0.0.1/callback') };
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** The AS answered the authorization request with a page of its own instead of sending the person back. */
class AuthorizationPageError extends Error {
  constructor(readonly page: Page) {
    super(`the authorization server showed ${page.url} (HTTP ${page.status}) instead of redirecting back`);
  }
}

/** An MCP host that identifies itself by its client ID metadata document URL; everything else in memory. */
class CimdHostProvider extends LoopbackHostProvider {
  /** every page the person's browser showed */
  readonly pages: Page[] = [];

  constructor(
    loopback: LoopbackRedirect,
    readonly documents: DocumentHost,
  ) {
    super(loopback);
    const go = this.browser.go.bind(this.browser);
    this.browser.go = async (...args) => {
      const page = await go(...args);
      this.pages.push(page);
      return page;
    };
  }

  get clientMetadataUrl(): string {
    return this.documents.clientId;
  }

  /** what the document says (the SDK would only send this to /register, which it must not call) */
  get clientMetadata(): OAuthClientMetadata {
    const { client_id: _id, ...metadata } = this.documents.document;
    return metadata;
  }

  get consentPages(): Page[] {
    return this.pages.filter((page) => page.forms.some((form) => form.action.endsWith('/confirm')));
  }

  /** alice signs in and consents, as for any host; an AS error page ends it */
  protected override async signIn(url: URL): Promise<URL> {
    try {
      return await super.signIn(url);
    } catch (err) {
      const last = this.pages.at(-1);
      if (last && last.status >= 400) throw new AuthorizationPageError(last);
      throw err;
    }
  }
}

/** Every request an AS received, as "METHOD /path", counted on the AS's own HTTP server. */
function countRequests(as: TestServer): string[] {
  const seen: string[] = [];
  as.http.on('request', (req: IncomingMessage) => seen.push(`${req.method} ${new URL(req.url ?? '/', as.issuer).pathname}`));
  return seen;
}

const documents = new DocumentHost();
const loopback = new LoopbackRedirect();
let notes: NotesServer;
let strictNotes: NotesServer;
let as: TestServer;
let strict: TestServer;
let asRequests: string[];
let strictRequests: string[];

before(async () => {
  await Promise.all([documents.start(), loopback.start()]);
  // no static clients at all, and only this AS may fetch documents on loopback
  ({ notes, as } = await startProtectedNotes((url) => ({
    store: 'sqlite',
    config: { resources: [exampleNotesResource(url)], clients: [], cimd: { dangerouslyAllowPrivateNetwork: true } },
  })));
  // the same, with the default document policy: loopback and private addresses are never fetched
  ({ notes: strictNotes, as: strict } = await startProtectedNotes((url) => ({ store: 'sqlite', config: { resources: [exampleNotesResource(url)], clients: [] } })));
  asRequests = countRequests(as);
  strictRequests = countRequests(strict);
});

after(async () => {
  await Promise.all([notes?.stop(), strictNotes?.stop()]);
  await Promise.all([as?.stop(), strict?.stop()]);
  await Promise.all([documents.stop(), loopback.stop()]);
});

describe('MCP SDK client with a client ID metadata document → notes MCP server ← mcp-authz', () => {
  const provider = new CimdHostProvider(loopback, documents);
  const exchanges: Exchange[] = [];
  const fetchFn = recordingFetch(exchanges, '/token');
  let client: Client;

  it('discovers, skips registration, signs in with PKCE and resource, and connects', async () => {
    assert.equal(documents.fetches, 0);
    client = await connectAfterSignIn('sdk-cimd-test', notes.url, provider, fetchFn);

    const sequence = exchanges.map((e) => `${e.method} ${e.url} ${e.status}`);
    const origin = new URL(notes.url).origin;
    assert.deepEqual(sequence.slice(0, 3), [
      `POST ${notes.url} 401`,
      `GET ${origin}/.well-known/oauth-protected-resource/mcp 200`,
      `GET ${as.issuer}/.well-known/oauth-authorization-server 200`,
    ]);
    assert.ok(sequence.includes(`POST ${as.issuer}/token 200`), sequence.join('\n'));
    assert.equal(sequence.at(-1)?.startsWith(`POST ${notes.url} 20`), true, sequence.join('\n'));
  });

  it('the SDK never called /register: its client_id is the document URL', async () => {
    assert.equal(
      exchanges.filter((e) => e.url.includes('/register')).length,
      0,
      exchanges.map((e) => `${e.method} ${e.url} ${e.status}`).join('\n'),
    );
    assert.deepEqual(
      asRequests.filter((r) => r.endsWith('/register')),
      [],
      'the AS received no registration request',
    );
    assert.ok(asRequests.includes('GET /auth') && asRequests.includes('POST /token'), asRequests.join('\n'));
    const registrationEvents = as.logs.filter((l) => /regist/.test(String(l.event ?? ''))).map((l) => l.event);
    assert.deepEqual(registrationEvents, [], 'no registration was logged (client.registered, client.registration_*)');

    // what the SDK saved and used as its client identity
    assert.equal(provider.savedClientInformation.length, 1);
    assert.equal(provider.savedClientInformation[0]!.client_id, documents.clientId);
    assert.equal((provider.savedClientInformation[0]! as Record<string, unknown>).client_secret, undefined);
    assert.equal(provider.authorizationUrls[0]!.searchParams.get('client_id'), documents.clientId);
    const token = exchanges.find((e) => e.url === `${as.issuer}/token`)!;
    const form = new URLSearchParams(token.requestBody ?? '');
    assert.equal(form.get('client_id'), documents.clientId, `token request: ${token.requestBody}`);
    assert.equal(form.get('grant_type'), 'authorization_code');
    assert.equal(form.get('client_secret'), null);
    assert.ok(form.get('code_verifier'), 'the code verifier was sent');
    assert.equal(form.get('resource'), notes.url);
  });

  it('the AS fetched the document (once: the token request used its cache)', async () => {
    assert.equal(documents.fetches, 1, `document fetches: ${JSON.stringify([...documents.hits])}`);
    assert.deepEqual([...documents.hits.keys()], [DOCUMENT_PATH], 'nothing else was asked of the document host');
  });

  it('the authorization request carries PKCE S256, the MCP URL as resource, and a loopback redirect on a run-time port', () => {
    assert.equal(provider.authorizationUrls.length, 1);
    const url = provider.authorizationUrls[0]!;
    assert.equal(url.origin + url.pathname, `${as.issuer}/auth`);
    assert.equal(url.searchParams.get('resource'), notes.url);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    // the document lists http://127.0.0.1/callback; the port is the listener's
    assert.equal(url.searchParams.get('redirect_uri'), loopback.redirectUri);
    assert.notEqual(new URL(loopback.redirectUri).port, '');
    assert.equal(loopback.received.length, 1, 'the loopback listener got exactly one authorization response');
  });

  it("the consent page names the document's host and the document's client name", () => {
    assert.equal(provider.consentPages.length, 1);
    const html = provider.consentPages[0]!.html;
    assert.match(html, new RegExp(`identified by ${documents.host.replace(/\./g, '\\.')}`));
    assert.ok(html.includes(CLIENT_NAME), 'the client_name from the document is shown');
    assert.ok(html.includes(documents.clientId), 'the client_id is shown');
  });

  it("the access token is for the notes server's canonical URL and names the document URL as client", () => {
    const { payload } = jwt(provider.accessToken);
    assert.ok(
      payload.aud === notes.url || (Array.isArray(payload.aud) && payload.aud.length === 1 && payload.aud[0] === notes.url),
      `aud is ${JSON.stringify(payload.aud)}`,
    );
    assert.equal(payload.iss, as.issuer);
    assert.equal(payload.client_id, documents.clientId);
    assert.ok(typeof payload.sub === 'string' && payload.sub.length > 0, 'a person is the subject');
    // consent as preselected: notes:delete is dangerous and was not granted
    assert.deepEqual(String(payload.scope).split(' ').sort(), ['notes:read', 'notes:write']);
  });

  it('tool calls run on the notes server with that token', async () => {
    assert.deepEqual(await toolNames(client), ['add_note', 'list_notes', 'read_note']);
    const text = `cimd note ${randomUUID()}`;
    const added = await client.callTool({ name: 'add_note', arguments: { text } });
    assert.ok(!(added as ToolResult).isError, textOf(added));
    const { id } = JSON.parse(textOf(added)) as { id: string };
    const read = await client.callTool({ name: 'read_note', arguments: { id } });
    assert.ok(!(read as ToolResult).isError, textOf(read));
    assert.match(textOf(read), new RegExp(text));
    const listed = await listNotes<{ id: string; text: string }>(client);
    assert.deepEqual(
      listed.notes.map((n) => [n.id, n.text]),
      [[id, text]],
    );
  });

  it('a new connection reuses the token: no sign-in, no AS request, no document fetch', async () => {
    const before = exchanges.length;
    const asBefore = asRequests.length;
    const again = await connectClient('sdk-cimd-test', notes.url, provider, fetchFn);
    try {
      const listed = await listNotes(again);
      assert.equal(listed.notes.length, 1);
    } finally {
      await again.close();
      await client.close();
    }
    const later = exchanges.slice(before);
    assert.ok(
      later.every((e) => e.url === notes.url && e.status !== 401 && e.status !== 403),
      later.map((e) => `${e.method} ${e.url} ${e.status}`).join('\n'),
    );
    assert.deepEqual(asRequests.slice(asBefore), []);
    assert.equal(provider.authorizationUrls.length, 1);
    assert.equal(documents.fetches, 1);
  });
});

describe('the same client against an AS that does not allow private networks', () => {
  const provider = new CimdHostProvider(new LoopbackRedirect(), documents);
  const exchanges: Exchange[] = [];

  it("is refused: the SDK's auth ends in the AS's error page, never at the client's redirect URI", async () => {
    const fetchesBefore = documents.fetches;
    const receivedBefore = loopback.received.length;
    await provider.loopback.start();
    try {
      await assert.rejects(connectClient('sdk-cimd-test', strictNotes.url, provider, recordingFetch(exchanges, '/token')), (err) => {
        assert.ok(err instanceof AuthorizationPageError, `expected the AS's error page, got ${String(err)}`);
        assert.equal(new URL(err.page.url).origin, strict.issuer);
        assert.equal(err.page.status, 400, err.page.html.slice(0, 400));
        assert.match(err.page.html, /invalid_client/);
        return true;
      });
      assert.equal(provider.loopback.received.length, 0, 'nothing was delivered to the redirect URI');
      assert.equal(loopback.received.length, receivedBefore);
    } finally {
      await provider.loopback.stop();
    }

    // the SDK used the document URL as its client_id and did not fall back to registration
    assert.equal(provider.authorizationUrls.length, 1);
    assert.equal(provider.authorizationUrls[0]!.searchParams.get('client_id'), documents.clientId);
    assert.equal(exchanges.filter((e) => e.url.includes('/register')).length, 0);
    assert.deepEqual(
      strictRequests.filter((r) => r.endsWith('/register') || r.endsWith('/token')),
      [],
    );
    assert.equal(provider.consentPages.length, 0, 'no consent page was shown');
    assert.equal(provider.tokens(), undefined);
    assert.equal(documents.fetches, fetchesBefore, 'the document server was never reached');
  });

  it('the AS log says why: the document is on a loopback address', async () => {
    const refusals = () =>
      strict.logs.filter(
        (l) => (l.event === 'client_fetch.refused' && l.url === documents.clientId) || (l.event === 'cimd.rejected' && l.clientId === documents.clientId),
      );
    for (let i = 0; i < 50 && !refusals().some((l) => /loopback/.test(String(l.reason))); i++) await new Promise((r) => setTimeout(r, 20));
    const reasons = refusals().map((l) => `${String(l.event)}: ${String(l.reason)}`);
    assert.ok(
      refusals().some((l) => /loopback/.test(String(l.reason))),
      `expected a logged refusal mentioning loopback, got ${JSON.stringify(reasons)}`,
    );
  });
});
