/**
 * How each adapter learns a reported tool call's outcome, against a real authorization server
 * (client-credentials tokens): node:http answering in Server-Sent Events, koa with a JSON body
 * and with a thrown error, and a batch carrying two calls; the client acting as itself is no
 * `subject`. 'local' mode, records collected through `onRecord`.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { serverFixture } from '../helpers/harness.js';
import { clientCredentialsToken, NOTES } from '../verifier/support.js';
import { createVerifier, koaMiddleware, nodeMiddleware, type ToolCallRecord, type Verifier } from '../../src/verifier/index.js';
import { outcomeOf } from '../../src/verifier/tool-reports.js';

const call = (id: number | string, name: string, args: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

describe('tool call outcomes as the adapters see them', () => {
  const s = serverFixture('sqlite');
  const records: ToolCallRecord[] = [];
  let verifier: Verifier;
  let token: string;
  const servers: Server[] = [];

  const listen = async (handler: Parameters<typeof createServer>[1]): Promise<string> => {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  };
  const post = (url: string, body: unknown) =>
    fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const settled = async (count: number) => {
    for (let i = 0; i < 100 && records.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(records.length, count);
  };

  before(async () => {
    verifier = createVerifier({ issuer: s.t.issuer, resource: NOTES, revocation: false, toolCalls: { report: 'local', onRecord: (r) => records.push(r) } });
    token = await clientCredentialsToken(s.t);
  });
  after(async () => {
    await verifier.close();
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('node: an SSE answer with a JSON-RPC error, and a batch of two calls each with its own outcome', async () => {
    const guard = nodeMiddleware(verifier);
    const url = await listen(async (req, res) => {
      if (!(await guard(req, res))) return;
      const body = (req as { body?: unknown }).body;
      const messages = Array.isArray(body) ? body : [body];
      res.setHeader('content-type', 'text/event-stream');
      res.write(': comment\n\n');
      for (const m of messages as { id: number; params: { name: string } }[]) {
        const answer = m.params.name === 'broken' ? { jsonrpc: '2.0', id: m.id, error: { code: -32603, message: 'failed' } } : { jsonrpc: '2.0', id: m.id, result: { content: [] } };
        res.write(`event: message\ndata: ${JSON.stringify(answer)}\n\n`);
      }
      res.end();
    });
    records.length = 0;
    assert.equal((await post(url, call(1, 'broken'))).status, 200);
    await settled(1);
    assert.equal(records[0]!.outcome, 'error');
    assert.equal(records[0]!.tool, 'broken');
    assert.equal(records[0]!.client_id, 'nightly-report');
    assert.equal(records[0]!.subject, undefined, 'a client acting as itself is no person');
    assert.equal(records[0]!.resource, NOTES);

    records.length = 0;
    await (await post(url, [call(2, 'fine', { a: 1 }), call(3, 'broken')])).text();
    await settled(2);
    const byTool = Object.fromEntries(records.map((r) => [r.tool, r.outcome]));
    assert.deepEqual(byTool, { fine: 'success', broken: 'error' });
  });

  it('koa: the JSON body koa writes, an HTTP error status, and nothing for other methods', async () => {
    const app = new Koa();
    app.use(koaMiddleware(verifier));
    app.use(async (ctx) => {
      const body = (ctx.request as { body?: { id: number; method: string; params?: { name?: string } } }).body!;
      if (body.params?.name === 'crash') {
        ctx.status = 500;
        ctx.body = { jsonrpc: '2.0', id: body.id, error: { code: -32603, message: 'internal' } };
        return;
      }
      ctx.body = { jsonrpc: '2.0', id: body.id, result: { content: [], isError: body.params?.name === 'refuses' } };
    });
    const url = await listen(app.callback());
    records.length = 0;
    for (const [i, name] of ['ok', 'refuses', 'crash'].entries()) await (await post(url, call(i, name))).text();
    await (await post(url, { jsonrpc: '2.0', id: 9, method: 'tools/list' })).text();
    await settled(3);
    assert.deepEqual(
      records.map((r) => [r.tool, r.outcome]),
      [
        ['ok', 'success'],
        ['refuses', 'error'],
        ['crash', 'error'],
      ],
    );
    for (const r of records) assert.ok(r.duration_ms >= 0 && Number.isInteger(r.duration_ms));
  });

  it('outcomeOf: JSON, SSE, another id, a cut body', () => {
    assert.equal(outcomeOf(200, '{"jsonrpc":"2.0","id":1,"result":{"content":[]}}', 1), 'success');
    assert.equal(outcomeOf(200, '{"jsonrpc":"2.0","id":1,"result":{"isError":true}}', 1), 'error');
    assert.equal(outcomeOf(200, 'event: message\ndata: {"jsonrpc":"2.0","id":"a","error":{"code":1}}\n\n', 'a'), 'error');
    assert.equal(outcomeOf(200, '{"jsonrpc":"2.0","id":2,"error":{"code":1}}', 1), 'success', 'the answer to another call does not count');
    assert.equal(outcomeOf(200, '{"jsonrpc":"2.0","id":1,"result":{"isError": true, "content":[{"text":"…', 1), 'error');
    assert.equal(outcomeOf(502, '', 1), 'error');
  });
});
