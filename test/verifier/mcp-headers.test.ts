/**
 * `Mcp-Method` / `Mcp-Name` (MCP 2026-07-28 Streamable HTTP, SEP-2243) and `cacheScope`, over
 * real HTTP: a real mcp-authz issues the tokens; Express → nodeMiddleware → the SDK's McpServer
 * over Streamable HTTP, whose tools count their runs. Headers that match the body → the call
 * runs; a `Mcp-Name` or `Mcp-Method` that does not → 400 with JSON-RPC error -32020 and the tool
 * never runs; no headers → as before. `scopesFrom: 'headers'` refuses a tool the token lacks the
 * scope for from the headers alone, without reading the body. A per-token `tools/list` carries
 * `cacheScope: "private"`.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startServer, type TestServer } from '../helpers/server.js';
import {
  allowedTool,
  authenticateRequest,
  createVerifier,
  headerMismatch,
  koaMiddleware,
  nodeMiddleware,
  privateToolLists,
  requiredScopesFromHeaders,
  type AuthInfo,
  type ToolScopes,
  type Verifier,
} from '../../src/verifier/index.js';
import { clientCredentialsToken, NOTES } from './support.js';

const TOOL_SCOPES: ToolScopes = { list_notes: ['notes:read'], add_note: ['notes:write'] };

const rpc = (method: string, params: Record<string, unknown>, id: string | number = 1) => ({ jsonrpc: '2.0', id, method, params });
const call = (name: string, id = 1) => rpc('tools/call', { name, arguments: {} }, id);
const base64 = (text: string) => `=?base64?${Buffer.from(text, 'utf8').toString('base64')}?=`;

let t: TestServer;
let verifier: Verifier;
let token: string;
let http: Server;
let base: string;
/** how many times each tool ran */
const runs: Record<string, number> = {};
/** what reached the handler behind the header-only gateway */
const forwarded: Array<{ bodyParsed: boolean; raw: string }> = [];

before(async () => {
  t = await startServer({ store: 'sqlite' });
  verifier = createVerifier({ issuer: t.issuer, resource: NOTES });
  await verifier.ready();
  token = await clientCredentialsToken(t); // notes:read only

  const app = express();
  app.post('/mcp', nodeMiddleware(verifier, { toolScopes: TOOL_SCOPES }), async (req, res) => {
    const auth = (req as express.Request & { auth?: AuthInfo }).auth!;
    const server = new McpServer({ name: 'notes', version: '1.0.0' });
    for (const name of Object.keys(TOOL_SCOPES)) {
      if (!allowedTool(name, auth.scopes, TOOL_SCOPES)) continue;
      server.registerTool(name, { description: name }, async () => {
        runs[name] = (runs[name] ?? 0) + 1;
        return { content: [{ type: 'text' as const, text: `${name} ran` }] };
      });
    }
    // a tool whose name needs the base64 form in Mcp-Name (registered only when called: the SDK warns about such names)
    if ((req.body as { params?: { name?: unknown } } | undefined)?.params?.name === 'notes·liste') server.registerTool('notes·liste', { description: 'non-ASCII name' }, async () => {
      runs['notes·liste'] = (runs['notes·liste'] ?? 0) + 1;
      return { content: [{ type: 'text' as const, text: 'ran' }] };
    });
    const transport = privateToolLists(new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true }));
    res.on('close', () => void transport.close().then(() => server.close()));
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  // a gateway that does not read bodies: scopes from the headers alone
  app.post('/gateway', nodeMiddleware(verifier, { toolScopes: TOOL_SCOPES, scopesFrom: 'headers' }), async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    forwarded.push({ bodyParsed: req.body !== undefined, raw: Buffer.concat(chunks).toString('utf8') });
    res.json({ forwarded: true });
  });
  http = createServer(app);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

after(async () => {
  await verifier.close();
  http.closeAllConnections();
  await new Promise<void>((resolve) => http.close(() => resolve()));
  await t.stop();
});

const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : undefined) as Record<string, any> | undefined, headers: res.headers };
};

/** Asserts a 400 HeaderMismatch (-32020) answer whose message matches `message`. */
function headerMismatchAnswer(answer: Awaited<ReturnType<typeof post>>, message: RegExp, id: unknown = 1) {
  assert.equal(answer.status, 400);
  assert.equal(answer.json?.jsonrpc, '2.0');
  assert.equal(answer.json?.id, id);
  assert.equal(answer.json?.error?.code, -32020);
  assert.match(answer.json?.error?.message, message);
}

describe('Mcp-Method / Mcp-Name checked against the JSON-RPC body (nodeMiddleware with toolScopes)', () => {
  it('headers that match the body → the call runs (header names in any case)', async () => {
    const before = runs.list_notes ?? 0;
    const answer = await post('/mcp', call('list_notes'), { 'Mcp-Method': 'tools/call', 'MCP-NAME': 'list_notes' });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(answer.json?.result?.content?.[0]?.text, 'list_notes ran');
    assert.equal(runs.list_notes, before + 1);
  });

  it('a base64-encoded Mcp-Name is decoded before the comparison', async () => {
    const answer = await post('/mcp', call('notes·liste'), { 'mcp-method': 'tools/call', 'mcp-name': base64('notes·liste') });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(runs['notes·liste'], 1);
    const wrong = await post('/mcp', call('notes·liste'), { 'mcp-method': 'tools/call', 'mcp-name': base64('notes·other') });
    headerMismatchAnswer(wrong, /Mcp-Name header value 'notes·other' does not match body value 'notes·liste'/);
    headerMismatchAnswer(await post('/mcp', call('notes·liste'), { 'mcp-method': 'tools/call', 'mcp-name': '=?base64?***?=' }), /not valid/);
    assert.equal(runs['notes·liste'], 1);
  });

  it('Mcp-Name naming another tool than the body → 400 -32020, and the tool never runs', async () => {
    const before = runs.list_notes ?? 0;
    const answer = await post('/mcp', call('list_notes', 7), { 'mcp-method': 'tools/call', 'mcp-name': 'add_note' });
    headerMismatchAnswer(answer, /^Header mismatch: Mcp-Name header value 'add_note' does not match body value 'list_notes'$/, 7);
    // values are case-sensitive
    headerMismatchAnswer(await post('/mcp', call('list_notes'), { 'mcp-method': 'tools/call', 'mcp-name': 'LIST_NOTES' }), /'LIST_NOTES' does not match/);
    assert.equal(runs.list_notes ?? 0, before, 'the tool did not run');
  });

  it('Mcp-Method that does not match the body → 400 -32020, and the tool never runs', async () => {
    const before = runs.list_notes ?? 0;
    const answer = await post('/mcp', call('list_notes'), { 'mcp-method': 'tools/list', 'mcp-name': 'list_notes' });
    headerMismatchAnswer(answer, /^Header mismatch: Mcp-Method header value 'tools\/list' does not match body value 'tools\/call'$/);
    headerMismatchAnswer(await post('/mcp', call('list_notes'), { 'mcp-method': 'Tools/Call', 'mcp-name': 'list_notes' }), /'Tools\/Call' does not match/);
    // a 2026-07-28 client must send Mcp-Name with tools/call
    headerMismatchAnswer(await post('/mcp', call('list_notes'), { 'mcp-method': 'tools/call' }), /Mcp-Name header missing for tools\/call/);
    assert.equal(runs.list_notes ?? 0, before, 'the tool did not run');
  });

  it('a header with a body that is not a single JSON-RPC request (a batch) → 400 -32020', async () => {
    const before = runs.list_notes ?? 0;
    const answer = await post('/mcp', [call('list_notes', 1), call('list_notes', 2)], { 'mcp-method': 'tools/call', 'mcp-name': 'list_notes' });
    headerMismatchAnswer(answer, /body is a batch, not a single JSON-RPC request/, null);
    assert.equal(runs.list_notes ?? 0, before);
  });

  it('the header check comes after the token check and before the scope check', async () => {
    const noToken = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'mcp-method': 'tools/list' },
      body: JSON.stringify(call('list_notes')),
    });
    assert.equal(noToken.status, 401);
    // a mismatch on a call the token may not make is still a mismatch (400), not a 403
    headerMismatchAnswer(await post('/mcp', call('add_note'), { 'mcp-method': 'tools/call', 'mcp-name': 'list_notes' }), /'list_notes' does not match body value 'add_note'/);
    // matching headers: the body's scopes decide → 403
    const refused = await post('/mcp', call('add_note'), { 'mcp-method': 'tools/call', 'mcp-name': 'add_note' });
    assert.equal(refused.status, 403);
    assert.match(refused.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    assert.equal(runs.add_note, undefined);
  });

  it('no headers → as before (raw JSON-RPC and the SDK client, which sends none)', async () => {
    const before = runs.list_notes ?? 0;
    const answer = await post('/mcp', call('list_notes'));
    assert.equal(answer.status, 200);
    assert.equal(runs.list_notes, before + 1);
    assert.equal((await post('/mcp', call('add_note'))).status, 403);
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    await client.callTool({ name: 'list_notes', arguments: {} });
    assert.equal(runs.list_notes, before + 2);
    await client.close();
  });
});

describe("scopes from the headers alone (scopesFrom: 'headers')", () => {
  it('a token lacking the tool’s scope → 403 from the headers, the body never read', async () => {
    const count = forwarded.length;
    const answer = await post('/gateway', call('add_note'), { 'mcp-method': 'tools/call', 'mcp-name': 'add_note' });
    assert.equal(answer.status, 403);
    assert.match(answer.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    assert.match(answer.headers.get('www-authenticate') ?? '', /scope="notes:write"/);
    assert.equal(forwarded.length, count, 'nothing was forwarded');
  });

  it('an allowed tool passes with the body unread (the stream is left for the next hop)', async () => {
    const answer = await post('/gateway', call('list_notes'), { 'mcp-method': 'tools/call', 'mcp-name': 'list_notes' });
    assert.equal(answer.status, 200);
    const last = forwarded.at(-1)!;
    assert.equal(last.bodyParsed, false);
    assert.deepEqual(JSON.parse(last.raw), call('list_notes'));
  });

  it('missing headers → 400 -32020 (absent headers must not skip the scope check)', async () => {
    const count = forwarded.length;
    headerMismatchAnswer(await post('/gateway', call('add_note')), /Mcp-Method header missing/, null);
    headerMismatchAnswer(await post('/gateway', call('add_note'), { 'mcp-method': 'tools/call' }), /Mcp-Name header missing for tools\/call/, null);
    assert.equal(forwarded.length, count);
  });

  it('requiredScopesFromHeaders and headerMismatch, as functions', () => {
    assert.deepEqual(requiredScopesFromHeaders({ method: 'tools/call', name: 'add_note' }, { toolScopes: TOOL_SCOPES }), { scopes: ['notes:write'] });
    assert.deepEqual(requiredScopesFromHeaders({ method: 'tools/list' }, { toolScopes: TOOL_SCOPES }), { scopes: [] });
    const resources = { resourceScopes: [{ uriPattern: 'notes://private/*', scopes: ['notes:admin'] }] };
    assert.deepEqual(requiredScopesFromHeaders({ method: 'resources/read', name: 'notes://private/1' }, resources), { scopes: ['notes:admin'] });
    assert.ok('error' in requiredScopesFromHeaders({}, { toolScopes: TOOL_SCOPES }));
    assert.equal(headerMismatch({ method: 'resources/read', name: 'notes://a' }, rpc('resources/read', { uri: 'notes://a' })), undefined);
    assert.match(headerMismatch({ method: 'resources/read', name: 'notes://b' }, rpc('resources/read', { uri: 'notes://a' }))!, /'notes:\/\/b' does not match body value 'notes:\/\/a'/);
    assert.equal(headerMismatch({}, [call('x')]), undefined, 'no headers: nothing to check');
    assert.match(headerMismatch({ name: 'x' }, call('x'))!, /Mcp-Method header missing/);
  });

  it('the koa adapter checks the headers too, and reads them alone with scopesFrom: headers', async () => {
    const serve = async (app: { callback(): RequestListener }) => {
      const server = createServer(app.callback());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp` };
    };
    const reached: string[] = [];
    const body = new Koa().use(koaMiddleware(verifier, { toolScopes: TOOL_SCOPES })).use((ctx) => void (reached.push('body'), (ctx.body = {})));
    const headers = new Koa().use(koaMiddleware(verifier, { toolScopes: TOOL_SCOPES, scopesFrom: 'headers' })).use((ctx) => void (reached.push('headers'), (ctx.body = {})));
    const servers = [await serve(body), await serve(headers)];
    try {
      const send = (url: string, payload: unknown, extra: Record<string, string>) =>
        fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...extra }, body: JSON.stringify(payload) });
      const [b, h] = servers.map((s) => s.url) as [string, string];
      assert.equal((await send(b, call('list_notes'), { 'mcp-method': 'tools/call', 'mcp-name': 'list_notes' })).status, 200);
      const mismatch = await send(b, call('list_notes'), { 'mcp-method': 'tools/call', 'mcp-name': 'add_note' });
      assert.equal(mismatch.status, 400);
      assert.equal(((await mismatch.json()) as { error: { code: number } }).error.code, -32020);
      assert.equal((await send(b, call('list_notes'), {})).status, 200, 'no headers: as before');
      assert.equal((await send(h, call('list_notes'), { 'mcp-method': 'tools/call', 'mcp-name': 'add_note' })).status, 403);
      assert.equal((await send(h, call('add_note'), {})).status, 400);
      assert.deepEqual(reached, ['body', 'body']);
    } finally {
      for (const { server } of servers) (server.closeAllConnections(), server.close());
    }
  });

  it('the fetch adapter checks the headers too', async () => {
    const request = (headers: Record<string, string>) =>
      new Request('https://notes.example.com/mcp', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
        body: JSON.stringify(call('list_notes')),
      });
    const options = { toolScopes: TOOL_SCOPES };
    const ok = await authenticateRequest(verifier, request({ 'mcp-method': 'tools/call', 'mcp-name': 'list_notes' }), options);
    assert.ok(!(ok instanceof Response));
    const refused = await authenticateRequest(verifier, request({ 'mcp-method': 'tools/call', 'mcp-name': 'add_note' }), options);
    assert.ok(refused instanceof Response);
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { error: { code: number } }).error.code, -32020);
  });
});

describe('tools/list filtered per token → cacheScope "private"', () => {
  it('the result carries cacheScope "private" and ttlMs, and lists only the tools the token may call', async () => {
    const answer = await post('/mcp', rpc('tools/list', {}, 'list-1'), { 'mcp-method': 'tools/list' });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(answer.json?.id, 'list-1');
    assert.equal(answer.json?.result?.cacheScope, 'private');
    assert.equal(answer.json?.result?.ttlMs, 0);
    assert.deepEqual(answer.json?.result?.tools.map((tool: { name: string }) => tool.name).sort(), ['list_notes']);
    // other results are left alone
    const called = await post('/mcp', call('list_notes'));
    assert.equal(called.json?.result?.cacheScope, undefined);
  });
});
