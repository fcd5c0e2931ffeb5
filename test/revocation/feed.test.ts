/**
 * The authorization server's side of revocation: JWT access tokens revoked (RFC 7009) and
 * introspected (RFC 7662), and every revocation (token, grant, account removal) published
 * on the feed verifiers follow, with resume by Last-Event-ID, across replicas.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { decodeJwt } from 'jose';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { NOTES, SECRET } from '../helpers/fixtures.js';
import { serviceToken, userTokens } from '../helpers/flows.js';
import { client } from '../helpers/rp.js';
import { SseClient, revocationFor } from '../helpers/sse.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { startRedis } from '../helpers/redis.js';
import { feedHash } from '../../src/revocation/feed-events.js';
import { PUSH_BOUND_MS } from '../helpers/timing.js';

const basic = (id: string) => `Basic ${Buffer.from(`${id}:${SECRET}`).toString('base64')}`;

async function post(t: TestServer, path: string, asClient: string, body: Record<string, string>) {
  const res = await fetch(t.url(path), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(asClient) },
    body: new URLSearchParams(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}


async function feed(t: TestServer, headers: Record<string, string> = {}) {
  const sse = new SseClient(t.url('/revocations'), headers);
  await sse.next((e) => e.event === 'ready');
  return sse;
}

for (const kind of STORE_KINDS) {
  describe(`revocation feed and JWT access tokens (${kind})`, () => {
    const s = serverFixture(kind);

    it('advertises the feed in the metadata', async () => {
      const meta = (await (await fetch(s.t.url('/.well-known/oauth-authorization-server'))).json()) as Record<string, unknown>;
      assert.equal(meta.revocation_feed_endpoint, s.t.url('/revocations'));
    });

    it('introspects a JWT access token for its client and its MCP server, not for others', async () => {
      const token = await serviceToken(s.t);
      const own = await post(s.t, '/token/introspection', 'nightly-report', { token });
      assert.equal(own.body.active, true);
      assert.equal(own.body.client_id, 'nightly-report');
      assert.equal(own.body.aud, NOTES);
      assert.equal(own.body.scope, 'notes:read');
      assert.equal((await post(s.t, '/token/introspection', 'notes-server', { token })).body.active, true);
      assert.deepEqual((await post(s.t, '/token/introspection', 'report-post', { token })).body, { active: false });
      assert.deepEqual((await post(s.t, '/token/introspection', 'nightly-report', { token: `${token}x` })).body, { active: false });
    });

    it('revokes a JWT access token: pushed on the feed, inactive at introspection', async () => {
      const sse = await feed(s.t);
      try {
        const token = await serviceToken(s.t);
        const { jti } = decodeJwt(token);
        const started = Date.now();
        const revoked = await post(s.t, '/token/revocation', 'nightly-report', { token });
        assert.equal(revoked.status, 200);
        const event = await sse.next(revocationFor('token', jti), PUSH_BOUND_MS);
        assert.ok(Date.now() - started < PUSH_BOUND_MS);
        assert.ok(event.id, 'events carry ids for resume');
        assert.deepEqual((await post(s.t, '/token/introspection', 'nightly-report', { token })).body, { active: false });
      } finally {
        await sse.close();
      }
    });

    it('only the token’s client may revoke it', async () => {
      const token = await serviceToken(s.t);
      const other = await post(s.t, '/token/revocation', 'report-post', { token });
      assert.equal(other.status, 400);
      assert.equal(other.body.error, 'invalid_request');
      assert.equal((await post(s.t, '/token/introspection', 'nightly-report', { token })).body.active, true);
    });

    it('revoking a refresh token revokes the grant: a grant event, and the grant’s JWTs go inactive', async () => {
      const sse = await feed(s.t);
      try {
        const { config, tokens } = await userTokens(s.t, 'confidential-web');
        const grantId = decodeJwt(tokens.access_token).grant_id;
        assert.equal(typeof grantId, 'string', 'access tokens name their grant');
        assert.equal((await post(s.t, '/token/introspection', 'confidential-web', { token: tokens.access_token })).body.active, true);
        await client.tokenRevocation(config, tokens.refresh_token!);
        await sse.next(revocationFor('grant', grantId), PUSH_BOUND_MS);
        assert.deepEqual((await post(s.t, '/token/introspection', 'confidential-web', { token: tokens.access_token })).body, { active: false });
      } finally {
        await sse.close();
      }
    });

    it('resumes after Last-Event-ID with exactly what was missed', async () => {
      const first = await feed(s.t);
      const t1 = await serviceToken(s.t);
      const t2 = await serviceToken(s.t);
      await post(s.t, '/token/revocation', 'nightly-report', { token: t1 });
      const e1 = await first.next(revocationFor('token', decodeJwt(t1).jti));
      await first.close();
      await post(s.t, '/token/revocation', 'nightly-report', { token: t2 });
      const resumed = await feed(s.t, { 'last-event-id': e1.id! });
      try {
        const revocations = resumed.events.filter((e) => e.event === 'revocation').map((e) => JSON.parse(e.data) as { hash?: string });
        assert.deepEqual(
          revocations.map((r) => r.hash),
          [feedHash('token', decodeJwt(t2).jti!)],
          'only the event after the resume point',
        );
      } finally {
        await resumed.close();
      }
    });

    it('tells an anonymous reader nothing it can use: no jti, grant id or subject, only hashes', async () => {
      const sse = await feed(s.t);
      try {
        const token = await serviceToken(s.t);
        const { jti } = decodeJwt(token);
        const { config, tokens } = await userTokens(s.t, 'confidential-web');
        const { grant_id: grantId, sub } = decodeJwt(tokens.access_token);
        await post(s.t, '/token/revocation', 'nightly-report', { token });
        await client.tokenRevocation(config, tokens.refresh_token!);
        await sse.next(revocationFor('token', jti), PUSH_BOUND_MS);
        await sse.next(revocationFor('grant', grantId), PUSH_BOUND_MS);
        const wire = sse.events.map((e) => e.data).join('\n');
        for (const identifier of [jti, grantId, sub]) assert.ok(!wire.includes(String(identifier)), `${String(identifier)} is not on the feed`);
        for (const e of sse.events.filter((e) => e.event === 'revocation')) {
          assert.deepEqual(Object.keys(JSON.parse(e.data) as object).sort(), e.data.includes('"subject"') ? ['before', 'hash', 'type', 'until'] : ['hash', 'type', 'until']);
        }
      } finally {
        await sse.close();
      }
    });

    it('sends heartbeats so a verifier can tell quiet from dead', async () => {
      const sse = await feed(s.t);
      try {
        const beat = await sse.next((e) => e.event === 'heartbeat', 7000);
        assert.ok(Number((JSON.parse(beat.data) as { time: number }).time) > 0);
      } finally {
        await sse.close();
      }
    });
  });
}

describe('revocations reach every replica and come from the CLI too', () => {
  it('a revocation on one Redis replica appears on another replica’s feed', async () => {
    const redis = await startRedis();
    const prefix = 'feed-replicas:';
    const a = await startServer({ store: 'redis', redisUrl: redis.url, redisKeyPrefix: prefix });
    const b = await startServer({ store: 'redis', redisUrl: redis.url, redisKeyPrefix: prefix });
    const sse = await feed(b);
    try {
      const token = await serviceToken(a);
      const { jti } = decodeJwt(token);
      const started = Date.now();
      await post(a, '/token/revocation', 'nightly-report', { token });
      await sse.next(revocationFor('token', jti), PUSH_BOUND_MS);
      assert.ok(Date.now() - started < PUSH_BOUND_MS);
      assert.deepEqual((await post(b, '/token/introspection', 'nightly-report', { token })).body, { active: false });
    } finally {
      await sse.close();
      await a.stop();
      await b.stop();
      await redis.stop();
    }
  });

  it('`mcp-authz user remove` revokes the person’s tokens (subject event) on SQLite', async () => {
    const t = await startServer({ store: 'sqlite', users: { alice: [], bob: [] } });
    const sse = await feed(t);
    try {
      const bob = (await t.server.store.accounts.findByUsername('bob'))!;
      const run = spawnSync(process.execPath, ['dist/src/main.js', 'user', 'remove', 'bob'], {
        env: { ...process.env, DATA_DIR: t.dataDir, MCP_AUTHZ_CONFIG: '', REDIS_URL: '' },
        encoding: 'utf8',
      });
      assert.equal(run.status, 0, run.stderr);
      await sse.next(revocationFor('subject', bob.id), 2000);
    } finally {
      await sse.close();
      await t.stop();
    }
  });
});

describe('revocation feed connections per source', () => {
  const s = serverFixture('sqlite', { config: { trustProxy: true, revocationFeed: { maxConnectionsPerSource: 3 } } });

  it('a source holds at most maxConnectionsPerSource at once: the next is 429, another source is not limited, a closed one frees its place', async () => {
    const open = await Promise.all([1, 2, 3].map(() => feed(s.t, { 'x-forwarded-for': '10.9.0.1' })));
    try {
      const refused = await fetch(s.t.url('/revocations'), { headers: { accept: 'text/event-stream', 'x-forwarded-for': '10.9.0.1' } });
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      assert.equal(((await refused.json()) as { error: string }).error, 'temporarily_unavailable');
      const other = await feed(s.t, { 'x-forwarded-for': '10.9.0.2' });
      await other.close();
      await open.pop()!.close();
      // the server sees the closed connection go; then the place is free again
      let again: Response | undefined;
      for (let i = 0; i < 50 && again?.status !== 200; i++) {
        await again?.body?.cancel();
        await new Promise((r) => setTimeout(r, 20));
        again = await fetch(s.t.url('/revocations'), { headers: { accept: 'text/event-stream', 'x-forwarded-for': '10.9.0.1' } });
      }
      assert.equal(again?.status, 200);
      await again?.body?.cancel();
    } finally {
      await Promise.all(open.map((c) => c.close()));
    }
  });
});
