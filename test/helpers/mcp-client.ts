/**
 * The MCP TypeScript SDK client against the example notes MCP server, for tests:
 * - the example server on its own loopback port, protected by a test authorization server
 *   made for its URL (`NotesServer`, `startProtectedNotes`);
 * - in-memory `OAuthClientProvider`s whose person signs in and consents on our pages with
 *   the fetch browser (`BrowserSignInProvider`), one of them receiving the authorization
 *   response on a loopback listener, as a native host does (`LoopbackHostProvider`,
 *   `LoopbackRedirect`), and the metadata such a public client has (`publicClientMetadata`);
 * - a fetch that records every HTTP exchange the SDK makes (`recordingFetch`);
 * - connecting an SDK `Client`, directly or through the 401 → sign-in → finishAuth round
 *   (`connectClient`, `connectAfterSignIn`), and reading what the notes tools answer
 *   (`textOf`, `toolNames`, `listNotes`).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { startServer, type StartOptions, type TestServer } from './server.js';
import { Browser, authorize } from './browser-driver.js';
import { PASSWORD } from './fixtures.js';
import { createNotesApp, type NotesApp, type NotesAppOptions } from '../../examples/notes-mcp-server/server.js';

/** The example notes MCP server on its own loopback port; it serves once `protectWith` names its AS. */
export class NotesServer {
  readonly #http = createServer();
  #notes: NotesApp | undefined;
  origin = '';

  get url(): string {
    return `${this.origin}/mcp`;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#http.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.#http.address() as AddressInfo).port}`;
  }

  protectWith(issuer: string, { revocation = false, ...more }: { revocation?: boolean } & Omit<NotesAppOptions, 'issuer' | 'resource' | 'revocation'> = {}): void {
    this.#notes = createNotesApp({ issuer, resource: this.url, revocation, ...more });
    this.#http.on('request', this.#notes.app);
  }

  /** the example's notes, once protected */
  get store(): NotesApp['store'] {
    assert.ok(this.#notes, 'the notes server is not protected yet');
    return this.#notes.store;
  }

  /** the example's verifier, once protected */
  get verifier(): NotesApp['verifier'] {
    return this.#notes?.verifier;
  }

  async stop(): Promise<void> {
    await this.#notes?.close();
    this.#http.closeAllConnections();
    await new Promise((resolve) => this.#http.close(resolve));
  }
}

/**
 * The notes server listening first (the AS's configuration needs its URL), then a test AS
 * started with `asOptions(the server's URL)`, which then protects the server.
 */
export async function startProtectedNotes(
  asOptions: (mcpUrl: string) => StartOptions,
  { revocation = false } = {},
): Promise<{ notes: NotesServer; as: TestServer }> {
  const notes = new NotesServer();
  await notes.listen();
  try {
    const as = await startServer(asOptions(notes.url));
    notes.protectWith(as.issuer, { revocation });
    return { notes, as };
  } catch (err) {
    await notes.stop();
    throw err;
  }
}

/**
 * The redirect target of a native MCP host: a listener on 127.0.0.1 that records the
 * authorization responses it receives, as a desktop app's loopback server would.
 */
export class LoopbackRedirect {
  readonly received: URL[] = [];
  #server: Server | undefined;
  #port = 0;

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      this.received.push(new URL(req.url ?? '/', this.origin));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('You may close this window.');
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get redirectUri(): string {
    return `${this.origin}/callback`;
  }

  async stop(): Promise<void> {
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server!.close(resolve));
  }
}

/** The metadata of a public client (no secret) that gets codes at `redirectUri` and may refresh. */
export function publicClientMetadata(clientName: string, redirectUri: string) {
  return {
    client_name: clientName,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  } satisfies OAuthClientMetadata;
}

/**
 * An MCP host's OAuth state for one person, all in memory. When the SDK sends the person to
 * authorize, they sign in (as `username`, with the tests' PASSWORD) and consent as the page
 * preselects, in the fetch browser; the host then receives the authorization response
 * (`receive`) and gives the SDK its code (`code`).
 */
export abstract class BrowserSignInProvider implements OAuthClientProvider {
  readonly browser = new Browser();
  readonly authorizationUrls: URL[] = [];
  #tokens: OAuthTokens | undefined;
  #codeVerifier = '';
  readonly #state = randomUUID();

  constructor(readonly username = 'alice') {}

  abstract get redirectUrl(): string;
  abstract get clientMetadata(): OAuthClientMetadata;
  abstract clientInformation(): OAuthClientInformationMixed | undefined;
  /** takes the authorization response the browser was sent back with */
  protected abstract receive(callback: URL): Promise<void>;
  /** the code from the authorization response the host received, after checking it */
  abstract code(): string;

  state(): string {
    return this.#state;
  }

  tokens(): OAuthTokens | undefined {
    return this.#tokens;
  }

  saveTokens(tokens: OAuthTokens): void {
    this.#tokens = tokens;
  }

  saveCodeVerifier(codeVerifier: string): void {
    this.#codeVerifier = codeVerifier;
  }

  codeVerifier(): string {
    return this.#codeVerifier;
  }

  async redirectToAuthorization(url: URL): Promise<void> {
    this.authorizationUrls.push(url);
    await this.receive(await this.signIn(url));
  }

  get accessToken(): string {
    assert.ok(this.#tokens?.access_token, 'no access token saved');
    return this.#tokens.access_token;
  }

  /** the person signs in and consents; resolves to the redirect back to `redirectUrl`, not followed */
  protected signIn(url: URL): Promise<URL> {
    return authorize(this.browser, url.href, this.redirectUrl, PASSWORD, { username: this.username });
  }

  /** the code in an authorization response, after checking it is no error and carries our `state` */
  protected codeIn(callback: URL): string {
    assert.equal(callback.searchParams.get('error'), null, `authorization failed: ${callback.search}`);
    assert.equal(callback.searchParams.get('state'), this.#state);
    const code = callback.searchParams.get('code');
    assert.ok(code, 'no code in the authorization response');
    return code;
  }
}

/**
 * An MCP host pre-registered as `clientId` (no dynamic registration to fall back to) whose
 * callback URL nothing listens at: the browser stops there and the host reads the code from it.
 * The person consents as the page preselects, or ticks exactly `consent` (checkbox values,
 * `<resource index>:<scope>`, e.g. `0:notes:delete`).
 */
export class RegisteredHostProvider extends BrowserSignInProvider {
  callback: URL | undefined;

  constructor(
    username: string,
    readonly host: { clientId: string; redirectUri: string; clientName?: string; consent?: string[] },
  ) {
    super(username);
  }

  get redirectUrl(): string {
    return this.host.redirectUri;
  }

  get clientMetadata(): OAuthClientMetadata {
    return publicClientMetadata(this.host.clientName ?? 'MCP host (test)', this.host.redirectUri);
  }

  clientInformation(): OAuthClientInformationMixed {
    return { client_id: this.host.clientId };
  }

  protected override signIn(url: URL): Promise<URL> {
    return authorize(this.browser, url.href, this.redirectUrl, PASSWORD, { username: this.username, ...(this.host.consent ? { scopes: this.host.consent } : {}) });
  }

  protected async receive(callback: URL): Promise<void> {
    this.callback = callback;
  }

  /** the authorization code from the callback, after checking `state` */
  code(): string {
    assert.ok(this.callback, 'the provider was not redirected to authorization');
    return this.codeIn(this.callback);
  }
}

/**
 * A host with no client_id of its own, redirected to its loopback listener: it keeps every
 * client information the SDK saves (a registration, or its metadata document URL), and the
 * person's browser delivers the authorization response to the listener.
 */
export abstract class LoopbackHostProvider extends BrowserSignInProvider {
  readonly savedClientInformation: OAuthClientInformationMixed[] = [];
  #client: OAuthClientInformationMixed | undefined;

  constructor(readonly loopback: LoopbackRedirect) {
    super();
  }

  get redirectUrl(): string {
    return this.loopback.redirectUri;
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.#client;
  }

  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.savedClientInformation.push(info);
    this.#client = info;
  }

  protected async receive(callback: URL): Promise<void> {
    const delivered = await this.browser.go(callback.href);
    assert.equal(delivered.status, 200, `the loopback listener answered ${delivered.status}`);
  }

  code(): string {
    const callback = this.loopback.received.at(-1);
    assert.ok(callback, 'no authorization response reached the loopback redirect URI');
    assert.equal(callback.pathname, '/callback');
    return this.codeIn(callback);
  }
}

/** One HTTP exchange of an SDK client; bodies only where asked for. */
export interface Exchange {
  method: string;
  url: string;
  status: number;
  requestBody?: string;
  responseBody?: string;
}

/**
 * A fetch for the SDK that appends every exchange to `exchanges`, in order, with the
 * request and response bodies of those whose URL ends with `keepBodiesOf`.
 */
export function recordingFetch(exchanges: Exchange[], keepBodiesOf?: string): FetchLike {
  return async (input, init) => {
    const url = String(input);
    const res = await fetch(input, init);
    const exchange: Exchange = { method: init?.method ?? 'GET', url, status: res.status };
    if (keepBodiesOf !== undefined && url.endsWith(keepBodiesOf)) {
      if (init?.body !== undefined && init.body !== null) exchange.requestBody = String(init.body);
      exchange.responseBody = await res.clone().text();
    }
    exchanges.push(exchange);
    return res;
  };
}

/** A new SDK client named `clientName`, connected to `mcpUrl` over Streamable HTTP, authorized by `provider`. */
export async function connectClient(clientName: string, mcpUrl: string, provider: OAuthClientProvider, fetchFn: FetchLike): Promise<Client> {
  const client = new Client({ name: clientName, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: fetchFn }));
  return client;
}

/**
 * The SDK client's whole authorization-code round: connect → UnauthorizedError (the person
 * signed in meanwhile) → finishAuth with the provider's code → a new client connects.
 */
export async function connectAfterSignIn(clientName: string, mcpUrl: string, provider: BrowserSignInProvider, fetchFn: FetchLike): Promise<Client> {
  const first = new Client({ name: clientName, version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: fetchFn });
  await assert.rejects(first.connect(transport), (err) => err instanceof UnauthorizedError);
  await transport.finishAuth(provider.code());
  return connectClient(clientName, mcpUrl, provider, fetchFn);
}

/** A tool call's result as the notes tools give it: one text content. */
export type ToolResult = { content: Array<{ type: string; text: string }>; isError?: boolean };
export const textOf = (result: unknown) => (result as ToolResult).content[0]!.text;

/** The names of the tools the server lists to `client`, sorted. */
export async function toolNames(client: Client): Promise<string[]> {
  const { tools } = await client.listTools();
  return tools.map((tool) => tool.name).sort();
}

/** What list_notes answers `client`, parsed. */
export async function listNotes<Note = unknown>(client: Client): Promise<{ notes: Note[] }> {
  return JSON.parse(textOf(await client.callTool({ name: 'list_notes', arguments: {} }))) as { notes: Note[] };
}
