/**
 * HTTP surface: the SDK's unchanged `requireBearerAuth` with our verifier, the node
 * (Express and plain node:http), koa and fetch adapters (401 without `error=` when no token,
 * 401 invalid_token, 403 insufficient_scope per tool, CORS, the RFC 9728 document), and an
 * end-to-end MCP SDK client → Express → our middleware → SDK Streamable HTTP transport.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import { z } from 'zod';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import * as sdkErrors from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { bearerChallenge, quote } from '../../src/verifier/challenge.js';
import {
  authenticateRequest,
  createVerifier,
  filterTools,
  koaMetadataMiddleware,
  koaMiddleware,
  metadataResponse,
  nodeMetadataHandler,
  nodeMiddleware,
  type AdapterOptions,
  type AuthInfo,
  type Verifier,
} from '../../src/verifier/index.js';
import { clientCredentialsToken, now, startFakeAs, NOTES, type FakeAs } from './support.js';

const METADATA_URL = 'https://notes.example.com/.well-known/oauth-protected-resource/mcp';

const OPTIONS: AdapterOptions = {
  requiredScopes: ['notes:read'],
  toolScopes: { list_notes: ['notes:read'], add_note: ['notes:write'] },
  resourceScopes: [{ uriPattern: 'notes://private/*', scopes: ['notes:admin'] }],
};

const rpc = (method: string, params: Record<string, unknown>, id = 1) => ({ jsonrpc: '2.0', id, method, params });
const callTool = (name: string) => rpc('tools/call', { name, arguments: {} });

let t: TestServer;
let as: FakeAs;
let verifier: Verifier;
let fakeVerifier: Verifier;
let token: string;
let expired: string;
const servers: Server[] = [];

async function listen(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const post = (url: string, body: unknown, auth?: string, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(auth ? { authorization: auth } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

before(async () => {
  t = await startServer({ store: 'sqlite' });
  as = await startFakeAs();
  verifier = createVerifier({ issuer: t.issuer, resource: NOTES, scopesSupported: ['notes:read'], resourceName: 'Notes' });
  fakeVerifier = createVerifier({ issuer: as.issuer, resource: NOTES });
  token = await clientCredentialsToken(t);
  expired = await as.sign({ iat: now() - 700, exp: now() - 60 });
});
after(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await as.stop();
  await t.stop();
});

/** The shared expectations for an adapter mounted at `${base}/mcp` with OPTIONS. */
function adapterContract(name: string, base: () => string) {
  it(`${name}: no token → 401, resource_metadata, no error attribute, CORS`, async () => {
    const res = await post(`${base()}/mcp`, callTool('list_notes'));
    assert.equal(res.status, 401);
    const header = res.headers.get('www-authenticate')!;
    assert.equal(header, `Bearer scope="notes:read", resource_metadata="${METADATA_URL}"`);
    assert.doesNotMatch(header, /error=/);
    assert.match(res.headers.get('access-control-expose-headers')!, /WWW-Authenticate/);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const params = extractWWWAuthenticateParams(res);
    assert.equal(params.resourceMetadataUrl?.href, METADATA_URL);
    assert.equal(params.error, undefined);
  });

  it(`${name}: bad or expired token → 401 invalid_token`, async () => {
    for (const bad of [`${token.slice(0, -4)}AAAA`, expired, 'not-a-jwt']) {
      const res = await post(`${base()}/mcp`, callTool('list_notes'), `Bearer ${bad}`);
      assert.equal(res.status, 401);
      const header = res.headers.get('www-authenticate')!;
      assert.match(header, /^Bearer error="invalid_token", error_description="[^"]+", scope="notes:read", resource_metadata="/);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_token');
    }
  });

  it(`${name}: tools/call needing notes:write → 403 naming every scope the call needs`, async () => {
    const res = await post(`${base()}/mcp`, callTool('add_note'), `Bearer ${token}`);
    assert.equal(res.status, 403);
    const header = res.headers.get('www-authenticate')!;
    assert.match(header, /^Bearer error="insufficient_scope", /);
    const params = extractWWWAuthenticateParams(res);
    assert.equal(params.error, 'insufficient_scope');
    assert.equal(params.scope, 'notes:read notes:write');
    assert.equal(params.resourceMetadataUrl?.href, METADATA_URL);
    assert.match(res.headers.get('access-control-expose-headers')!, /WWW-Authenticate/);
  });

  it(`${name}: a batch with one such call, and a protected resources/read → 403`, async () => {
    const batch = await post(`${base()}/mcp`, [callTool('list_notes'), { ...callTool('add_note'), id: 2 }], `Bearer ${token}`);
    assert.equal(batch.status, 403);
    assert.equal(extractWWWAuthenticateParams(batch).scope, 'notes:read notes:write');
    const read = await post(`${base()}/mcp`, rpc('resources/read', { uri: 'notes://private/42' }), `Bearer ${token}`);
    assert.equal(read.status, 403);
    assert.equal(extractWWWAuthenticateParams(read).scope, 'notes:read notes:admin');
  });

  it(`${name}: allowed call → handler runs with the AuthInfo and the parsed body`, async () => {
    const res = await post(`${base()}/mcp`, callTool('list_notes'), `Bearer ${token}`);
    assert.equal(res.status, 200);
    const seen = (await res.json()) as { clientId: string; body: { params: { name: string } }; scopes: string[] };
    assert.equal(seen.clientId, 'nightly-report');
    assert.deepEqual(seen.scopes, ['notes:read']);
    assert.equal(seen.body.params.name, 'list_notes');
    assert.match(res.headers.get('access-control-expose-headers')!, /WWW-Authenticate/);
    const pub = await post(`${base()}/mcp`, rpc('resources/read', { uri: 'notes://public/1' }), `Bearer ${token}`);
    assert.equal(pub.status, 200);
  });

  it(`${name}: unparseable JSON → 400 parse error; CORS preflight → 204`, async () => {
    const res = await post(`${base()}/mcp`, '{not json', `Bearer ${token}`);
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32700);
    const pre = await fetch(`${base()}/mcp`, {
      method: 'OPTIONS',
      headers: { origin: 'https://inspector.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, mcp-protocol-version' },
    });
    assert.equal(pre.status, 204);
    const allow = pre.headers.get('access-control-allow-headers')!;
    for (const h of ['Authorization', 'Content-Type', 'MCP-Protocol-Version', 'Mcp-Session-Id']) assert.ok(allow.includes(h), h);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  });

  it(`${name}: protected resource metadata at the path-aware URL, with CORS`, async () => {
    const res = await fetch(`${base()}/.well-known/oauth-protected-resource/mcp`, { headers: { origin: 'https://inspector.example' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.match(res.headers.get('access-control-expose-headers')!, /WWW-Authenticate/);
    assert.deepEqual(await res.json(), {
      resource: NOTES,
      authorization_servers: [t.issuer],
      scopes_supported: ['notes:read'],
      bearer_methods_supported: ['header'],
      resource_name: 'Notes',
    });
    const pre = await fetch(`${base()}/.well-known/oauth-protected-resource/mcp`, { method: 'OPTIONS' });
    assert.equal(pre.status, 204);
  });
}

describe('the SDK requireBearerAuth, unchanged, with our verifier', () => {
  let base: string;
  before(async () => {
    const app = express();
    const sdkVerifier = verifier.forSdk(sdkErrors);
    const echo = (req: express.Request, res: express.Response) => res.json({ clientId: req.auth?.clientId, resource: req.auth?.resource?.href });
    app.get('/sdk', requireBearerAuth({ verifier: sdkVerifier, resourceMetadataUrl: verifier.metadataUrl }), echo);
    app.get('/sdk-resource', requireBearerAuth({ verifier: sdkVerifier, expectedResource: new URL(NOTES) }), echo);
    app.get('/sdk-write', requireBearerAuth({ verifier: sdkVerifier, requiredScopes: ['notes:write'], resourceMetadataUrl: verifier.metadataUrl }), echo);
    app.get('/sdk-fake', requireBearerAuth({ verifier: fakeVerifier.forSdk(sdkErrors), resourceMetadataUrl: fakeVerifier.metadataUrl }), echo);
    app.get('/sdk-plain', requireBearerAuth({ verifier }), echo);
    base = await listen(app);
  });
  const get = (path: string, bearer?: string) => fetch(`${base}${path}`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });

  it('good token → 200 with req.auth (and expectedResource matches our AuthInfo.resource)', async () => {
    const res = await get('/sdk', token);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { clientId: 'nightly-report', resource: NOTES });
    assert.equal((await get('/sdk-resource', token)).status, 200);
  });

  it('bad, forged or expired token → 401 invalid_token (never 500)', async () => {
    for (const [path, bad] of [
      ['/sdk', `${token.slice(0, -4)}AAAA`],
      ['/sdk', 'opaque'],
      ['/sdk-fake', expired],
      ['/sdk-fake', await as.sign({}, { typ: 'JWT' })],
    ] as const) {
      const res = await get(path, bad);
      assert.equal(res.status, 401, `${path} ${bad.slice(0, 12)}`);
      const params = extractWWWAuthenticateParams(res);
      assert.equal(params.error, 'invalid_token');
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_token');
    }
    const expiredRes = await get('/sdk-fake', expired);
    assert.match(expiredRes.headers.get('www-authenticate')!, /error_description="The access token has expired"/);
  });

  it('missing scope → 403 insufficient_scope', async () => {
    const res = await get('/sdk-write', token);
    assert.equal(res.status, 403);
    assert.equal(extractWWWAuthenticateParams(res).error, 'insufficient_scope');
  });

  it('without forSdk too: the installed SDK is found, and a foreign token is 401 invalid_token, not 500', async () => {
    assert.equal((await get('/sdk-plain', token)).status, 200);
    const res = await get('/sdk-plain', expired);
    assert.equal(res.status, 401);
    assert.equal(extractWWWAuthenticateParams(res).error, 'invalid_token');
  });
});

describe('node adapter with Express (body read by the middleware)', () => {
  let base: string;
  before(async () => {
    const app = express();
    app.use(nodeMetadataHandler(verifier));
    app.all('/mcp', nodeMiddleware(verifier, OPTIONS), (req, res) => {
      res.json({ clientId: req.auth?.clientId, scopes: req.auth?.scopes, body: req.body as unknown });
    });
    base = await listen(app);
  });
  adapterContract('express', () => base);

  it('express: GET (the SSE stream) needs only the token', async () => {
    const res = await fetch(`${base}/mcp`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { clientId: string }).clientId, 'nightly-report');
  });
});

describe('node adapter with Express after express.json()', () => {
  let base: string;
  before(async () => {
    const app = express();
    app.use(express.json());
    app.post('/mcp', nodeMiddleware(verifier, OPTIONS), (req, res) => res.json({ clientId: req.auth?.clientId, body: req.body as unknown }));
    base = await listen(app);
  });
  it('uses the parsed req.body', async () => {
    assert.equal((await post(`${base}/mcp`, callTool('add_note'), `Bearer ${token}`)).status, 403);
    const ok = await post(`${base}/mcp`, callTool('list_notes'), `Bearer ${token}`);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { body: { params: { name: string } } }).body.params.name, 'list_notes');
  });
});

describe('node adapter with plain node:http (no next)', () => {
  let base: string;
  before(async () => {
    const guard = nodeMiddleware(verifier, OPTIONS);
    const metadata = nodeMetadataHandler(verifier);
    base = await listen(async (req, res) => {
      if (req.url?.startsWith('/.well-known/')) return metadata(req, res);
      if (!(await guard(req, res))) return;
      const auth = (req as IncomingMessage & { auth?: AuthInfo }).auth!;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ clientId: auth.clientId, scopes: auth.scopes, body: (req as { body?: unknown }).body }));
    });
  });
  adapterContract('node:http', () => base);
});

describe('koa adapter', () => {
  let base: string;
  before(async () => {
    const app = new Koa();
    app.use(koaMetadataMiddleware(verifier));
    app.use(koaMiddleware(verifier, OPTIONS));
    app.use((ctx) => {
      const auth = ctx.state.auth as AuthInfo;
      assert.equal((ctx.req as { auth?: AuthInfo }).auth, auth, 'ctx.req.auth is set for the SDK transport');
      ctx.body = { clientId: auth.clientId, scopes: auth.scopes, body: (ctx.request as { body?: unknown }).body };
    });
    base = await listen(app.callback());
  });
  adapterContract('koa', () => base);
});

describe('fetch adapter', () => {
  let base: string;
  before(async () => {
    const options = OPTIONS;
    base = await listen(async (req, res) => {
      // bridge node → fetch Request/Response to exercise the adapter over real HTTP
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const request = new Request(`http://x${req.url}`, { method: req.method!, headers, body: ['GET', 'HEAD', 'OPTIONS'].includes(req.method!) ? null : Buffer.concat(chunks) });
      let response: Response;
      if (new URL(request.url).pathname === verifier.metadataPath) response = metadataResponse(verifier, request);
      else {
        const result = await authenticateRequest(verifier, request, options);
        if (result instanceof Response) response = result;
        else response = Response.json({ clientId: result.clientId, scopes: result.scopes, body: await request.json() }, { headers: { 'access-control-expose-headers': 'WWW-Authenticate' } });
      }
      res.statusCode = response.status;
      response.headers.forEach((value, key) => res.setHeader(key, value));
      res.end(Buffer.from(await response.arrayBuffer()));
    });
  });
  adapterContract('fetch', () => base);

  it('fetch: the request body stays readable after authentication', async () => {
    const request = new Request('https://notes.example.com/mcp', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(callTool('list_notes')),
    });
    const auth = await authenticateRequest(verifier, request, OPTIONS);
    assert.ok(!(auth instanceof Response));
    assert.equal(((await request.json()) as { method: string }).method, 'tools/call');
  });

  it('fetch: a body over maxBodyBytes → 413, without a token check bypass', async () => {
    const small = { ...OPTIONS, maxBodyBytes: 16 };
    const request = new Request('https://notes.example.com/mcp', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(callTool('list_notes')),
    });
    const res = await authenticateRequest(verifier, request, small);
    assert.ok(res instanceof Response);
    assert.equal(res.status, 413);
  });
});

describe('challenge() and scope helpers', () => {
  it('quoting per RFC 6750, and no token → no error attribute', () => {
    const c = verifier.challenge();
    assert.equal(c.status, 401);
    assert.equal(c.headers['WWW-Authenticate'], `Bearer resource_metadata="${METADATA_URL}"`);
    assert.equal(c.headers['Access-Control-Expose-Headers'], 'WWW-Authenticate, Mcp-Session-Id');
    assert.equal(quote('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(bearerChallenge([['error', 'invalid_token'], ['scope', undefined], ['resource_metadata', 'https://x/"y']]), 'Bearer error="invalid_token", resource_metadata="https://x/\\"y"');
  });

  it('503 with Retry-After for an unavailable authorization server; 500 for anything else', async () => {
    const down = createVerifier({ issuer: 'http://127.0.0.1:9', resource: NOTES });
    const err = await down.verifyAccessToken(token).catch((e: unknown) => e);
    const c = down.challenge(err);
    assert.equal(c.status, 503);
    assert.ok(Number(c.headers['Retry-After']) > 0);
    assert.equal(c.headers['WWW-Authenticate'], undefined);
    assert.equal(verifier.challenge(new Error('bug')).status, 500);
  });

  it("stepUpScopes 'operation-and-granted' adds the token's scopes to the 403 challenge", async () => {
    const v = createVerifier({ issuer: t.issuer, resource: NOTES, stepUpScopes: 'operation-and-granted' });
    const err = await v.authenticate(`Bearer ${token}`, { requiredScopes: ['notes:write'] }).catch((e: unknown) => e);
    assert.match(v.challenge(err).headers['WWW-Authenticate']!, /scope="notes:write notes:read"/);
  });

  it('filterTools / allowedTool (with a * default)', () => {
    const tools = [{ name: 'list_notes' }, { name: 'add_note' }, { name: 'other' }];
    const toolScopes = { list_notes: ['notes:read'], add_note: ['notes:write'], '*': ['notes:admin'] };
    assert.deepEqual(filterTools(tools, ['notes:read'], toolScopes).map((tool) => tool.name), ['list_notes']);
    assert.deepEqual(filterTools(tools, ['notes:read', 'notes:write', 'notes:admin'], toolScopes).length, 3);
  });

  it('metadata path for resources with and without a path', () => {
    assert.equal(verifier.metadataPath, '/.well-known/oauth-protected-resource/mcp');
    assert.equal(verifier.metadataUrl, METADATA_URL);
    const root = createVerifier({ issuer: t.issuer, resource: 'https://mcp.example.com' });
    assert.equal(root.metadataPath, '/.well-known/oauth-protected-resource');
    const deep = createVerifier({ issuer: t.issuer, resource: 'https://h.example.com/tenant/a/mcp' });
    assert.equal(deep.metadataUrl, 'https://h.example.com/.well-known/oauth-protected-resource/tenant/a/mcp');
  });
});

describe('MCP SDK client → Express → nodeMiddleware → SDK Streamable HTTP transport', () => {
  let base: string;
  before(async () => {
    const app = express();
    app.use(nodeMetadataHandler(verifier));
    const guard = nodeMiddleware(verifier, OPTIONS);
    app.post('/mcp', guard, async (req, res) => {
      const server = new McpServer({ name: 'notes', version: '1.0.0' });
      const whoami = async (_args: unknown, extra: { authInfo?: { clientId: string; scopes: string[] } }) => ({
        content: [{ type: 'text' as const, text: JSON.stringify({ clientId: extra.authInfo?.clientId, scopes: extra.authInfo?.scopes }) }],
      });
      server.registerTool('list_notes', { description: 'list', inputSchema: { filter: z.string().optional() } }, whoami);
      server.registerTool('add_note', { description: 'add', inputSchema: { text: z.string() } }, whoami);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => void transport.close().then(() => server.close()));
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    });
    app.get('/mcp', guard, (_req, res) => void res.status(405).set('Allow', 'POST').end());
    base = await listen(app);
  });

  it('the tool sees the AuthInfo; a call needing more scope is refused before the server', async () => {
    const client = new Client({ name: 'test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    await client.connect(transport);
    const result = (await client.callTool({ name: 'list_notes', arguments: {} })) as { content: Array<{ text: string }> };
    assert.deepEqual(JSON.parse(result.content[0]!.text), { clientId: 'nightly-report', scopes: ['notes:read'] });
    await assert.rejects(client.callTool({ name: 'add_note', arguments: { text: 'x' } }), /insufficient_scope/);
    await client.close();
  });
});
