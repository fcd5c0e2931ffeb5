/**
 * The test load balancer (test/helpers/balancer.ts) in front of two plain node:http backends
 * that say who they are and echo what they got: routing (round robin, pin, a routing
 * function), and what passes through unchanged (Host, headers, several Set-Cookie, redirects,
 * request and response bodies, a Server-Sent Events stream event by event).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { freePort } from '../helpers/redis.js';

interface Echo {
  backend: number;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One backend: `/sse` streams an event, waits for `release`, then another; everything else echoes. */
function backend(index: number, sse: { release?: () => void; closed?: Promise<void> }): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/redirect') {
      res.writeHead(303, [['Location', 'http://issuer.example/next?x=1'], ['Set-Cookie', 'a=1; Path=/; HttpOnly'], ['Set-Cookie', 'b=2; Path=/x']].flat());
      res.end();
      return;
    }
    if (req.url === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(`event: first\ndata: ${index}\n\n`);
      sse.closed = once(res, 'close').then(() => undefined);
      sse.release = () => res.end('event: second\ndata: done\n\n');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const echo: Echo = { backend: index, method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() };
      res.writeHead(req.url!.startsWith('/teapot') ? 418 : 200, { 'content-type': 'application/json', 'x-backend': String(index) });
      res.end(JSON.stringify(echo));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('the test load balancer', () => {
  const streams = [{}, {}] as { release?: () => void; closed?: Promise<void> }[];
  let servers: Server[];
  let lb: Balancer;

  before(async () => {
    servers = await Promise.all([backend(0, streams[0]!), backend(1, streams[1]!)]);
    lb = await startBalancer({ backends: servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`) });
  });
  after(async () => {
    await lb.close();
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  const echo = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${lb.url}${path}`, init);
    return { status: res.status, echo: (await res.json()) as Echo };
  };

  it('routes round robin, to a pinned backend, and by a routing function that wins over the pin', async () => {
    lb.pin(undefined);
    const rr = [];
    for (let i = 0; i < 4; i++) rr.push((await echo('/rr')).echo.backend);
    assert.ok(rr[0] !== rr[1] && rr[0] === rr[2] && rr[1] === rr[3], `alternates: ${rr.join(',')}`);

    lb.pin(1);
    for (let i = 0; i < 3; i++) assert.equal((await echo('/pinned')).echo.backend, 1);
    lb.route((req) => (req.url?.startsWith('/to-zero') ? 0 : undefined));
    assert.equal((await echo('/to-zero')).echo.backend, 0);
    assert.equal((await echo('/other')).echo.backend, 1, 'undefined falls back to the pin');
    lb.route(undefined);
    lb.pin(undefined);

    const mark = lb.served.length;
    await echo('/logged?q=1', { method: 'POST', body: 'x' });
    assert.deepEqual(lb.served.slice(mark).map(({ method, path, status }) => ({ method, path, status })), [{ method: 'POST', path: '/logged?q=1', status: 200 }]);
    assert.throws(() => lb.pin(2), /no backend 2/);
  });

  it('passes method, path, Host, headers and a streamed body through, adding X-Forwarded-For/Proto', async () => {
    lb.pin(0);
    const big = 'z'.repeat(1024 * 1024);
    const { status, echo: got } = await echo('/teapot?a=1&b=%20', {
      method: 'PUT',
      headers: { 'x-custom': 'yes', 'x-forwarded-for': '203.0.113.9', 'content-type': 'text/plain' },
      body: big,
    });
    assert.equal(status, 418);
    assert.equal(got.method, 'PUT');
    assert.equal(got.url, '/teapot?a=1&b=%20');
    assert.equal(got.headers.host, new URL(lb.url).host, 'the Host the client used');
    assert.equal(got.headers['x-custom'], 'yes');
    assert.equal(got.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(got.headers['x-forwarded-proto'], 'http');
    assert.equal(got.body.length, big.length);
    assert.equal(got.body, big);
    lb.pin(undefined);
  });

  it('passes redirects and every Set-Cookie through unchanged', async () => {
    const res = await fetch(`${lb.url}/redirect`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), 'http://issuer.example/next?x=1');
    assert.deepEqual(res.headers.getSetCookie(), ['a=1; Path=/; HttpOnly', 'b=2; Path=/x']);
  });

  it('streams Server-Sent Events as they come, and closes the backend side when the client leaves', async () => {
    lb.pin(1);
    const controller = new AbortController();
    const res = await fetch(`${lb.url}/sse`, { signal: controller.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body!.getReader();
    // bounded: a balancer that buffered the response would never hand over this first event
    const chunk = await Promise.race([reader.read(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the first event was held back')), 3000))]);
    const first = new TextDecoder().decode(chunk.value);
    assert.equal(first, 'event: first\ndata: 1\n\n', 'the first event arrives while the backend still holds the stream open');
    controller.abort();
    await Promise.race([streams[1]!.closed, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('backend stream not closed')), 3000))]);

    const again = await fetch(`${lb.url}/sse`);
    const whole = again.text();
    await new Promise((r) => setTimeout(r, 50));
    streams[1]!.release!();
    assert.equal(await whole, 'event: first\ndata: 1\n\nevent: second\ndata: done\n\n');
    lb.pin(undefined);
  });

  it('answers 502 when the chosen backend cannot be reached, and orders the other backends after it', async () => {
    const closed = await freePort();
    const down = await startBalancer({ backends: [`http://127.0.0.1:${closed}`, lb.backends[0]!.url] });
    try {
      down.pin(0);
      const res = await fetch(`${down.url}/x`, { method: 'POST', body: 'kept for a retry' });
      assert.equal(res.status, 502);
      assert.match(await res.text(), /bad gateway/);
      assert.equal(down.served.at(-1)!.status, 502);
      assert.deepEqual(down.candidates({ url: '/' } as IncomingMessage), [0, 1]);
      down.pin(1);
      assert.deepEqual(down.candidates({ url: '/' } as IncomingMessage), [1, 0]);
    } finally {
      await down.close();
    }
  });
});
