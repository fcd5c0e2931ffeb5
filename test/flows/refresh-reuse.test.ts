/**
 * The refresh token reuse grace window (src/provider/refresh-reuse.ts), over real HTTP on
 * SQLite and Redis: a rotated refresh token presented again within the window gets the same
 * successor (concurrently, later, and across two replicas sharing one Redis); after the
 * window, or with the window off, it revokes the whole grant. Confidential clients are never
 * answered from a stored answer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { CALENDAR, NOTES, SECRET } from '../helpers/fixtures.js';
import { userTokens } from '../helpers/flows.js';
import { startRedis } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { rotationKey, sealAnswer, unsealAnswer } from '../../src/provider/refresh-reuse.js';

const basic = (id: string) => `Basic ${Buffer.from(`${id}:${SECRET}`).toString('base64')}`;

interface TokenAnswer {
  status: number;
  body: Record<string, string>;
  headers: Headers;
}

/** POST /token with grant_type=refresh_token, as a public client (client_id in the body) unless `authorization` is given. */
async function refresh(
  t: TestServer,
  refreshToken: string,
  options: { clientId?: string; authorization?: string; params?: Record<string, string> } = {},
): Promise<TokenAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, ...options.params });
  if (options.authorization) headers.authorization = options.authorization;
  else body.set('client_id', options.clientId ?? 'web-app');
  const res = await fetch(t.url('/token'), { method: 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as Record<string, string>, headers: res.headers };
}

/** RFC 7662 introspection of a web-app access token, by the MCP server it was issued for. */
async function isActive(t: TestServer, accessToken: string): Promise<boolean> {
  const res = await fetch(t.url('/token/introspection'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('notes-server') },
    body: new URLSearchParams({ token: accessToken }),
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { active: boolean }).active;
}

async function webAppRefreshToken(t: TestServer): Promise<{ refreshToken: string; accessToken: string }> {
  const { tokens } = await userTokens(t, 'web-app');
  assert.ok(tokens.refresh_token, 'web-app gets a refresh token');
  return { refreshToken: tokens.refresh_token, accessToken: tokens.access_token };
}

function assertOk(answer: TokenAnswer): void {
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.ok(answer.body.refresh_token && answer.body.access_token);
}

function assertInvalidGrant(answer: TokenAnswer): void {
  assert.equal(answer.status, 400, JSON.stringify(answer.body));
  assert.equal(answer.body.error, 'invalid_grant');
}

describe('sealed answers', () => {
  const answer = { clientId: 'web-app', status: 200, body: { access_token: 'AT-successor', refresh_token: 'RT-successor', token_type: 'Bearer' } };

  it('open only with the refresh token they were sealed under', () => {
    const sealed = sealAnswer('rt-original', answer);
    assert.deepEqual(unsealAnswer('rt-original', sealed), answer);
    assert.equal(unsealAnswer('rt-other', sealed), undefined);
    assert.equal(unsealAnswer('RT-successor', sealed), undefined);
    assert.ok(!sealed.includes('successor') && !Buffer.from(sealed, 'base64url').toString('latin1').includes('successor'), 'ciphertext only');
    assert.notEqual(sealAnswer('rt-original', answer), sealed, 'a fresh IV each time');
  });

  it('refuse damaged or truncated text', () => {
    const sealed = sealAnswer('rt-original', answer);
    const raw = Buffer.from(sealed, 'base64url');
    raw[raw.length - 1]! ^= 1;
    assert.equal(unsealAnswer('rt-original', raw.toString('base64url')), undefined);
    assert.equal(unsealAnswer('rt-original', sealed.slice(0, 20)), undefined);
    assert.equal(unsealAnswer('rt-original', ''), undefined);
  });

  it('the store key is a domain-separated hash, not the token', () => {
    const key = rotationKey('rt-original');
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.notEqual(key, rotationKey('rt-other'));
    assert.ok(!key.includes('rt-original'));
  });
});

for (const kind of STORE_KINDS) {
  describe(`refresh reuse within the grace window (${kind})`, () => {
    const s = serverFixture(kind, { config: { refreshTokens: { reuseGraceWindow: 3 } } });

    it('the same token sent twice at once gets one successor, twice', async () => {
      const { refreshToken } = await webAppRefreshToken(s.t);
      const [a, b] = await Promise.all([refresh(s.t, refreshToken), refresh(s.t, refreshToken)]);
      assertOk(a);
      assertOk(b);
      assert.notEqual(a.body.refresh_token, refreshToken, 'rotated');
      assert.equal(b.body.refresh_token, a.body.refresh_token);
      assert.equal(b.body.access_token, a.body.access_token);
      for (const answer of [a, b]) {
        assert.equal(answer.headers.get('cache-control'), 'no-store');
        assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
      }
      // the store holds the answer sealed under the presented token: not the successor in the clear
      const record = await s.t.server.store.rotations.get(rotationKey(refreshToken));
      assert.ok(record?.outcome, 'positive control: the answer is stored');
      assert.ok(!record.outcome.includes(a.body.refresh_token!) && !record.outcome.includes(a.body.access_token!));
      assert.deepEqual(unsealAnswer(refreshToken, record.outcome)?.body, a.body);
      assert.equal(unsealAnswer(a.body.refresh_token!, record.outcome), undefined);
    });

    it('sent again a second later it gets the same successor; the grant lives on', async () => {
      const { refreshToken } = await webAppRefreshToken(s.t);
      const first = await refresh(s.t, refreshToken);
      assertOk(first);
      await sleep(1000);
      const again = await refresh(s.t, refreshToken);
      assertOk(again);
      assert.deepEqual(again.body, first.body);
      assert.equal(again.headers.get('cache-control'), 'no-store');
      assert.equal(again.headers.get('pragma'), 'no-cache');
      assert.match(again.headers.get('content-type') ?? '', /^application\/json/);

      assert.ok(await isActive(s.t, first.body.access_token!), 'the replayed access token is active');
      const next = await refresh(s.t, first.body.refresh_token!);
      assertOk(next);
      assert.notEqual(next.body.refresh_token, first.body.refresh_token);
      assert.ok(await isActive(s.t, next.body.access_token!), 'the grant was not revoked');
      assert.ok(!s.t.logs.some((l) => l.event === 'refresh_token.reuse_detected'), 'no theft reported');
    });

    it('another client presenting the token is not answered from the stored answer', async () => {
      const { refreshToken } = await webAppRefreshToken(s.t);
      const first = await refresh(s.t, refreshToken);
      assertOk(first);
      const stranger = await refresh(s.t, refreshToken, { clientId: 'xss-app' });
      assertInvalidGrant(stranger);
      assert.equal(stranger.body.access_token, undefined);
      const again = await refresh(s.t, refreshToken);
      assert.deepEqual(again.body, first.body, 'the owner still gets its answer');
      assertOk(await refresh(s.t, first.body.refresh_token!));
    });

    it('waits for a rotation claimed elsewhere; a released claim lets it rotate itself', async () => {
      const { refreshToken } = await webAppRefreshToken(s.t);
      const key = rotationKey(refreshToken);
      assert.equal(await s.t.server.store.rotations.claim(key, 60), true);
      const started = Date.now();
      const pending = refresh(s.t, refreshToken);
      await sleep(400);
      await s.t.server.store.rotations.release(key);
      const answer = await pending;
      assertOk(answer);
      assert.ok(Date.now() - started >= 400, 'it waited for the claim');
      assert.deepEqual((await refresh(s.t, refreshToken)).body, answer.body);
    });

    it('a claim never settled answers "already in progress" after about 5 s, and the grant lives on', async () => {
      const { refreshToken } = await webAppRefreshToken(s.t);
      const key = rotationKey(refreshToken);
      assert.equal(await s.t.server.store.rotations.claim(key, 60), true);
      const started = Date.now();
      const answer = await refresh(s.t, refreshToken);
      const waited = Date.now() - started;
      assert.equal(answer.status, 400);
      assert.deepEqual(answer.body, { error: 'invalid_grant', error_description: 'a refresh with this token is already in progress' });
      assert.equal(answer.headers.get('cache-control'), 'no-store');
      assert.ok(waited >= 4900 && waited < 8000, `waited ${waited} ms`);
      await s.t.server.store.rotations.release(key);
      assertOk(await refresh(s.t, refreshToken));
    });
  });
}

describe('refresh reuse after the grace window', () => {
  const s = serverFixture('sqlite', { config: { refreshTokens: { reuseGraceWindow: 1 } } });

  it('is treated as theft: invalid_grant, the whole grant revoked, the event logged without the token', async () => {
    const { refreshToken } = await webAppRefreshToken(s.t);
    const first = await refresh(s.t, refreshToken);
    assertOk(first);
    assert.ok(await isActive(s.t, first.body.access_token!), 'positive control');
    await sleep(2500);

    const late = await refresh(s.t, refreshToken);
    assertInvalidGrant(late);
    assertInvalidGrant(await refresh(s.t, first.body.refresh_token!));
    assert.equal(await isActive(s.t, first.body.access_token!), false, 'the grant is gone');

    const events = s.t.logs.filter((l) => l.event === 'refresh_token.reuse_detected');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.clientId, 'web-app');
    assert.equal(typeof events[0]!.requestId, 'string');
    assert.equal(events[0]!.level, 40, 'a warning');
    const logged = JSON.stringify(s.t.logs);
    for (const token of [refreshToken, first.body.refresh_token!, first.body.access_token!]) assert.ok(!logged.includes(token), 'no token in the logs');
  });
});

describe('a refresh naming a resource its grant does not cover', () => {
  const s = serverFixture('sqlite', { config: { refreshTokens: { reuseGraceWindow: 1 } } });

  it('is invalid_target and leaves the token as it was: the correct retry works, at once and after the window', async () => {
    for (const wait of [0, 1500]) {
      const { refreshToken, accessToken } = await webAppRefreshToken(s.t);
      // web-app may use the calendar server, but this grant is for notes; the unknown one is nobody's
      for (const resource of [CALENDAR, 'https://unknown.example.com/mcp', `${NOTES}#fragment`]) {
        const wrong = await refresh(s.t, refreshToken, { params: { resource } });
        assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
        assert.equal(wrong.body.error, 'invalid_target', resource);
      }
      await sleep(wait);
      const right = await refresh(s.t, refreshToken);
      assertOk(right);
      assert.ok(await isActive(s.t, right.body.access_token!), `wait ${wait}: the grant lives on`);
      assert.ok(await isActive(s.t, accessToken));
      // and naming the granted server in another spelling is the same server
      assertOk(await refresh(s.t, right.body.refresh_token!, { params: { resource: 'HTTPS://notes.example.com/mcp/' } }));
    }
    assert.ok(!s.t.logs.some((l) => l.event === 'refresh_token.reuse_detected'), 'no reuse was detected');
  });
});

describe('refresh reuse with the grace window off', () => {
  const s = serverFixture('sqlite', { config: { refreshTokens: { reuseGraceWindow: 0 } } });

  it('a second use is invalid_grant at once and revokes the grant; nothing is stored', async () => {
    const { refreshToken } = await webAppRefreshToken(s.t);
    const first = await refresh(s.t, refreshToken);
    assertOk(first);
    assertInvalidGrant(await refresh(s.t, refreshToken));
    assertInvalidGrant(await refresh(s.t, first.body.refresh_token!));
    assert.equal(await s.t.server.store.rotations.get(rotationKey(refreshToken)), undefined);
  });
});

describe('refresh reuse and confidential clients', () => {
  const s = serverFixture('sqlite', { config: { refreshTokens: { reuseGraceWindow: 5 } } });

  it('a client authenticating with client_secret_basic always reaches the engine', async () => {
    const { tokens } = await userTokens(s.t, 'confidential-web');
    const refreshToken = tokens.refresh_token!;
    const [a, b] = await Promise.all([
      refresh(s.t, refreshToken, { authorization: basic('confidential-web') }),
      refresh(s.t, refreshToken, { authorization: basic('confidential-web') }),
    ]);
    assertOk(a);
    assertOk(b);
    assert.notEqual(a.body.access_token, b.body.access_token, 'each answer comes from the engine, none is replayed');
    assert.equal(await s.t.server.store.rotations.get(rotationKey(refreshToken)), undefined, 'no rotation recorded');
    assertOk(await refresh(s.t, a.body.refresh_token ?? refreshToken, { authorization: basic('confidential-web') }));
  });
});

describe('refresh reuse across two replicas sharing one Redis', () => {
  it('concurrent refreshes of one token at replica A and replica B get the same successor', async () => {
    const redis = await startRedis();
    const prefix = 'reuse-replicas:';
    const config = { refreshTokens: { reuseGraceWindow: 5 } };
    const a = await startServer({ store: 'redis', redisUrl: redis.url, redisKeyPrefix: prefix, config });
    const b = await startServer({ store: 'redis', redisUrl: redis.url, redisKeyPrefix: prefix, config });
    try {
      let { refreshToken } = await webAppRefreshToken(a);
      for (let round = 0; round < 5; round++) {
        const [atA, atB] = await Promise.all([refresh(a, refreshToken), refresh(b, refreshToken)]);
        assertOk(atA);
        assertOk(atB);
        assert.equal(atB.body.refresh_token, atA.body.refresh_token, `round ${round}`);
        assert.equal(atB.body.access_token, atA.body.access_token, `round ${round}`);
        assert.notEqual(atA.body.refresh_token, refreshToken);
        refreshToken = atA.body.refresh_token!;
      }
      assert.ok(!a.logs.some((l) => l.event === 'refresh_token.reuse_detected'));
      assert.ok(!b.logs.some((l) => l.event === 'refresh_token.reuse_detected'));
      assertOk(await refresh(b, refreshToken));
    } finally {
      await a.stop();
      await b.stop();
      await redis.stop();
    }
  });
});
