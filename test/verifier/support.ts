/**
 * Test support for the verifier: real client-credentials tokens from a real mcp-authz
 * server, and a small fake authorization server on 127.0.0.1 (own issuer, own signing key)
 * serving metadata, JWKS, introspection and a revocation feed (Server-Sent Events) that the
 * test drives: push revocations, stop heartbeats, drop connections.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import type { TestServer } from '../helpers/server.js';
import { NOTES, SECRET } from '../helpers/fixtures.js';
import type { RevocationEvent as StoredRevocation } from '../../adapters/contract.js';
import { feedEvent } from '../../src/revocation/feed-events.js';

export { NOTES, SECRET };

/** A client-credentials access token for NOTES from the real server (client nightly-report, scope notes:read). */
export async function clientCredentialsToken(t: TestServer, clientId = 'nightly-report', scope = 'notes:read'): Promise<string> {
  const res = await fetch(t.url('/token'), {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${clientId}:${SECRET}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope }),
  });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

export const now = () => Math.floor(Date.now() / 1000);

export interface FeedConnection {
  lastEventId: string | undefined;
  accept: string | undefined;
  res: ServerResponse;
}

/** A revocation as the authorization server stores it (identifiers in the clear). */
export type RevocationEventInput = StoredRevocation;

/** The revocation feed of the fake AS. */
export class TestFeed {
  readonly connections: FeedConnection[] = [];
  readonly log: { id: string; data: RevocationEventInput }[] = [];
  /** no events at all on new or open connections (a hung AS) */
  silent = false;
  /** send `ready` after the backlog */
  sendReady = true;
  #heartbeat: ReturnType<typeof setInterval>;
  #next = 1;

  constructor(heartbeatMs: number) {
    this.#heartbeat = setInterval(() => {
      if (!this.silent) this.#broadcast(`event: heartbeat\ndata: {"time":${Date.now()}}\n\n`);
    }, heartbeatMs);
    this.#heartbeat.unref();
  }

  handle(req: IncomingMessage, res: ServerResponse): FeedConnection {
    const lastEventId = req.headers['last-event-id'] as string | undefined;
    const connection = { lastEventId, accept: req.headers.accept, res };
    this.connections.push(connection);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.flushHeaders();
    req.on('close', () => {
      const i = this.connections.indexOf(connection);
      if (i !== -1) this.connections.splice(i, 1);
    });
    if (this.silent) return connection;
    res.write('retry: 1000\n\n');
    const after = lastEventId === undefined ? 0 : this.log.findIndex((e) => e.id === lastEventId) + 1;
    for (const entry of this.log.slice(after)) res.write(this.#format(entry));
    if (this.sendReady) res.write(`event: ready\ndata: {"time":${Date.now()}}\n\n`);
    return connection;
  }

  /** Appends a revocation and sends it to every open connection; returns its id. */
  revoke(data: RevocationEventInput): string {
    const entry = { id: String(this.#next++), data };
    this.log.push(entry);
    if (!this.silent) this.#broadcast(this.#format(entry));
    return entry.id;
  }

  /** Appends a revocation to the log only (as if it happened while the verifier was disconnected). */
  revokeQuietly(data: RevocationEventInput): string {
    const entry = { id: String(this.#next++), data };
    this.log.push(entry);
    return entry.id;
  }

  /** As a server shutting down does: `event: reconnect`, then ends every open connection. */
  askReconnect(): void {
    for (const c of this.connections.splice(0)) c.res.end(`event: reconnect\ndata: {"reason":"shutting down"}\n\n`);
  }

  /** Kills every open connection server-side. */
  dropAll(): void {
    for (const c of this.connections.splice(0)) c.res.destroy();
  }

  /** Resolves when at least `count` connections have been opened in total. */
  async waitForConnections(count: number, total: () => number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (total() < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} feed connections, saw ${total()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  stop(): void {
    clearInterval(this.#heartbeat);
    this.dropAll();
  }

  #format(entry: { id: string; data: RevocationEventInput }) {
    // on the wire as the real feed sends it: identifiers hashed
    return `id: ${entry.id}\nevent: revocation\ndata: ${JSON.stringify(feedEvent(entry.data))}\n\n`;
  }

  #broadcast(text: string) {
    for (const c of this.connections) c.res.write(text);
  }
}

export interface FakeAs {
  issuer: string;
  url(path: string): string;
  key: { privateKey: CryptoKey; publicJwk: JWK; kid: string };
  feed: TestFeed;
  /** every connection the feed accepted (with its Last-Event-ID) */
  feedHistory: FeedConnection[];
  /** token → introspection answer (default: inactive) */
  introspection: Map<string, Record<string, unknown>>;
  /** Authorization headers of introspection requests */
  introspectionCalls: string[];
  /** request counts per path */
  hits: Map<string, number>;
  /** metadata overrides (e.g. a wrong issuer) */
  metadata: Record<string, unknown>;
  /** A token signed with the fake AS key: defaults to a valid access token for NOTES. `undefined` claim values are removed. */
  sign(claims?: Record<string, unknown>, header?: Record<string, unknown>, key?: CryptoKey): Promise<string>;
  stop(): Promise<void>;
}

export async function startFakeAs({ heartbeatMs = 200 }: { heartbeatMs?: number } = {}): Promise<FakeAs> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = 'fake-key-1';
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const feed = new TestFeed(heartbeatMs);
  const feedHistory: FeedConnection[] = [];
  const introspection = new Map<string, Record<string, unknown>>();
  const introspectionCalls: string[] = [];
  const hits = new Map<string, number>();
  const metadata: Record<string, unknown> = {};
  let issuer = '';

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/.well-known/oauth-authorization-server') {
      return json(200, {
        issuer,
        jwks_uri: `${issuer}/jwks`,
        introspection_endpoint: `${issuer}/introspect`,
        revocation_feed_endpoint: `${issuer}/revocations`,
        ...metadata,
      });
    }
    if (path === '/jwks') return json(200, { keys: [publicJwk] });
    if (path === '/revocations') {
      feedHistory.push(feed.handle(req, res));
      return undefined;
    }
    if (path === '/introspect' && req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        introspectionCalls.push(req.headers.authorization ?? '');
        const token = new URLSearchParams(body).get('token') ?? '';
        json(200, introspection.get(token) ?? { active: false });
      });
      return undefined;
    }
    json(404, { error: 'not_found' });
    return undefined;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    url: (path) => `${issuer}${path}`,
    key: { privateKey, publicJwk, kid },
    feed,
    feedHistory,
    introspection,
    introspectionCalls,
    hits,
    metadata,
    async sign(claims = {}, header = {}, key = privateKey) {
      const payload: JWTPayload = {
        iss: issuer,
        aud: NOTES,
        sub: 'user-1',
        client_id: 'test-client',
        scope: 'notes:read',
        jti: randomUUID(),
        iat: now(),
        exp: now() + 600,
        ...claims,
      };
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
      const protectedHeader = { alg: 'ES256', typ: 'at+jwt', kid, ...header };
      for (const [k, v] of Object.entries(protectedHeader)) if (v === undefined) delete (protectedHeader as Record<string, unknown>)[k];
      return new SignJWT(payload).setProtectedHeader(protectedHeader as { alg: string }).sign(key);
    },
    async stop() {
      feed.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls `probe` until it returns true; resolves with the elapsed ms, rejects after `timeoutMs`. */
export async function eventually(probe: () => Promise<boolean>, timeoutMs = 3000): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The `code` a promise rejects with (or 'resolved'). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}
