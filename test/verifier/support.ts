/**
 * Test support for the verifier: real client-credentials tokens from a real mcp-authz
 * server, and a small fake authorization server on 127.0.0.1 (own issuer, own signing key)
 * serving metadata, JWKS, introspection and a revocation feed (Server-Sent Events) that the
 * test drives: push revocations, stop heartbeats, drop connections.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
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

/** An approval record of the stand-in `/tool-approvals`. */
export interface FakeApprovalRecord {
  id: string;
  /** grant id, else `client:` + client id */
  key: string;
  resource: string;
  tool: string;
  digest: string;
  summary: string;
  status: 'pending' | 'approved' | 'denied' | 'expired' | 'redeemed' | 'closed';
  approvedBy?: 'person' | 'policy';
}

/** What a test changes in the next approval tokens the stand-in signs. */
export interface ApprovalTokenTweaks {
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  key?: CryptoKey;
}

/**
 * The stand-in authorization server's `POST /tool-approvals` (contract of issue #15): HTTP Basic
 * as `credentials`, records keyed by grant (or client), tool and digest, the contract's
 * resolution order and answers, and approval tokens signed with the fake AS key. The test
 * decides records with {@link approve} / {@link refuse} / {@link expire}.
 */
export class FakeApprovals {
  /** every request received: the Authorization header and the JSON body */
  readonly requests: { authorization: string; body: Record<string, unknown> }[] = [];
  readonly records = new Map<string, FakeApprovalRecord>();
  credentials = { clientId: 'notes-mcp', clientSecret: 'rs-secret' };
  /** answers in place of the contract's behaviour while set (return undefined to fall through) */
  override: ((body: Record<string, unknown>) => { status: number; body: unknown } | undefined) | undefined;
  /** changes to every approval token signed while set */
  tweaks: ApprovalTokenTweaks | undefined;
  /** the approval answers sent, newest last */
  readonly approvedAnswers: Record<string, unknown>[] = [];
  #next = 1;

  constructor(readonly issuer: () => string, readonly signer: { privateKey: CryptoKey; kid: string }) {}

  approve(id: string, by: 'person' | 'policy' = 'person'): void {
    const record = this.records.get(id)!;
    record.status = 'approved';
    record.approvedBy = by;
  }
  refuse(id: string): void {
    this.records.get(id)!.status = 'denied';
  }
  expire(id: string): void {
    this.records.get(id)!.status = 'expired';
  }

  async handle(authorization: string, body: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
    this.requests.push({ authorization, body });
    const expected = `Basic ${Buffer.from(`${this.credentials.clientId}:${this.credentials.clientSecret}`).toString('base64')}`;
    if (authorization !== expected) return { status: 401, body: { error: 'invalid_client' } };
    const overridden = this.override?.(body);
    if (overridden) return overridden;
    const { token, tool, arguments_digest: digest, summary, approval_id: approvalId } = body as Record<string, string>;
    if (typeof token !== 'string' || typeof tool !== 'string' || typeof summary !== 'string' || !/^sha-256:[A-Za-z0-9_-]{43}$/.test(digest ?? '')) {
      return { status: 400, body: { error: 'invalid_request', error_description: 'bad body' } };
    }
    if (summary.length < 1 || summary.length > 300) return { status: 400, body: { error: 'invalid_request', error_description: 'bad summary' } };
    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch {
      return { status: 400, body: { error: 'invalid_token' } };
    }
    const resource = typeof claims.aud === 'string' ? claims.aud : (claims.aud?.[0] ?? '');
    const key = typeof claims.grant_id === 'string' ? claims.grant_id : `client:${String(claims.client_id)}`;
    const matches = (r: FakeApprovalRecord) => r.key === key && r.resource === resource && r.tool === tool && r.digest === digest;
    const open = (r: FakeApprovalRecord) => r.status === 'pending' || r.status === 'approved' || r.status === 'denied' || r.status === 'expired';
    let record = approvalId !== undefined ? this.records.get(approvalId) : undefined;
    if (record && !(matches(record) && open(record))) record = undefined;
    record ??= [...this.records.values()].reverse().find((r) => matches(r) && open(r));
    if (record?.status === 'approved') {
      record.status = 'redeemed';
      const answer = { status: 'approved', approval_id: record.id, approval_token: await this.#sign(record, claims), expires_in: 60 };
      this.approvedAnswers.push(answer);
      return { status: 200, body: answer };
    }
    if (record?.status === 'pending') return { status: 200, body: this.#pending(record) };
    if (record?.status === 'denied' || record?.status === 'expired') {
      const status = record.status;
      record.status = 'closed';
      return { status: 200, body: { status, approval_id: record.id } };
    }
    if (typeof claims.sub !== 'string' || claims.sub === claims.client_id) {
      return { status: 200, body: { status: 'unavailable', error_description: 'the access token was issued to a client, not to a person' } };
    }
    const created: FakeApprovalRecord = { id: `approval-${this.#next++}-${randomUUID()}`, key, resource, tool, digest: digest!, summary, status: 'pending' };
    this.records.set(created.id, created);
    return { status: 200, body: this.#pending(created) };
  }

  #pending(record: FakeApprovalRecord) {
    return {
      status: 'pending',
      approval_id: record.id,
      approval_url: `${this.issuer()}/approvals/${record.id}`,
      account_url: `${this.issuer()}/account/apps`,
      expires_in: 300,
      interval: 5,
    };
  }

  async #sign(record: FakeApprovalRecord, access: JWTPayload): Promise<string> {
    const iat = now();
    const payload: JWTPayload = {
      iss: this.issuer(),
      aud: record.resource,
      sub: access.sub,
      client_id: access.client_id,
      grant_id: access.grant_id,
      jti: record.id,
      iat,
      exp: iat + 60,
      approved_by: record.approvedBy ?? 'person',
      authorization_details: [{ type: 'mcp_tool_call', locations: [record.resource], tool: record.tool, arguments_digest: record.digest, summary: record.summary }],
      ...this.tweaks?.claims,
    };
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
    const header = { alg: 'ES256', typ: 'mcp-approval+jwt', kid: this.signer.kid, ...this.tweaks?.header };
    return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(this.tweaks?.key ?? this.signer.privateKey);
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
  /** `POST /tool-approvals` (also served at `/custom/tool-approvals`, for endpoint discovery tests) */
  approvals: FakeApprovals;
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
  const approvals = new FakeApprovals(() => issuer, { privateKey, kid });

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
    if ((path === '/tool-approvals' || path === '/custom/tool-approvals') && req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(body) as Record<string, unknown>;
        } catch {
          return json(400, { error: 'invalid_request' });
        }
        approvals.handle(req.headers.authorization ?? '', parsed).then(
          (answer) => json(answer.status, answer.body),
          () => json(500, { error: 'server_error' }),
        );
        return undefined;
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
    approvals,
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
