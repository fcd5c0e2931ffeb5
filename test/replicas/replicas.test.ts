/**
 * Two `mcp-authz serve` processes (replicas A and B) on one real redis-server, behind a real
 * reverse proxy whose URL is their issuer, work as one authorization server (issue 13, point 5):
 * a sign-in started on A completes on B; a device code approved through A is redeemed by
 * polling B; refresh rotation and its reuse grace window hold across both; a revocation
 * through A reaches a verifier following B's revocation feed (pushed); rate limits
 * are shared; keys rotated with the CLI are served by B, and what A signs with them verifies
 * against B's JWKS. The balancer's log says which replica answered each request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { Browser, findForm } from '../helpers/browser-driver.js';
import { NOTES, PASSWORD, REDIRECT, SECRET } from '../helpers/fixtures.js';
import { approveDevice, authorizationRequest, pollDevice, startDevice, userTokens } from '../helpers/flows.js';
import { startReplicaSet, type ReplicaSet } from '../helpers/replicas.js';
import { client } from '../helpers/rp.js';
import { revocationFor, SseClient } from '../helpers/sse.js';
import { createVerifier } from '../../src/verifier/index.js';
import { codeOf, eventually } from '../verifier/support.js';
import { PUSH_BOUND_MS } from '../helpers/timing.js';

const A = 0;
const B = 1;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id: string, secret = SECRET) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
/** the grace window, in seconds */
const GRACE = 2;
/** successful token requests one client may make per minute */
const TOKEN_LIMIT = 20;

describe('two replicas on one Redis behind a load balancer', () => {
  let set: ReplicaSet;

  before(async () => {
    set = await startReplicaSet({
      config: {
        keys: { reloadInterval: 1, activationDelay: 2 },
        refreshTokens: { reuseGraceWindow: GRACE },
        deviceFlow: { interval: 1 },
        rateLimits: { tokenPerClient: { max: TOKEN_LIMIT, window: 60 }, clientAuthFailuresPerClientSource: { max: 3, window: 60 } },
      },
    });
  });
  after(async () => {
    await set?.stop();
  });

  /** Runs `steps` with every request to replica `index`. */
  async function on<T>(index: number, steps: () => Promise<T>): Promise<T> {
    set.balancer.pin(index);
    try {
      return await steps();
    } finally {
      set.balancer.pin(undefined);
    }
  }

  /** Which replica answered each request since `mark` (an index into the balancer's log), as "METHOD path → replica". */
  function routeSince(mark: number): string[] {
    return set.balancer.served.slice(mark).map((s) => `${s.method} ${s.path.split('?')[0]} → ${'AB'[s.backend]}`);
  }

  async function jwks(): Promise<JSONWebKeySet> {
    const metadata = (await (await fetch(set.url('/.well-known/oauth-authorization-server'))).json()) as { jwks_uri: string };
    const res = await fetch(metadata.jwks_uri);
    assert.equal(res.status, 200);
    return (await res.json()) as JSONWebKeySet;
  }

  async function verifyWithJwksOf(index: number, token: string) {
    const keys = await on(index, jwks);
    return jwtVerify(token, createLocalJWKSet(keys), { issuer: set.issuer, audience: NOTES, typ: 'at+jwt' });
  }

  async function introspect(token: string): Promise<boolean> {
    const res = await fetch(set.url('/token/introspection'), {
      method: 'POST',
      headers: { ...FORM, authorization: basic('notes-server') },
      body: new URLSearchParams({ token }),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { active: boolean }).active;
  }

  async function clientCredentials(clientId = 'nightly-report', headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, string>; retryAfter: string | null }> {
    const res = await fetch(set.url('/token'), {
      method: 'POST',
      headers: { ...FORM, authorization: basic(clientId), ...headers },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, string>, retryAfter: res.headers.get('retry-after') };
  }

  /** A client credentials token from replica `index` signed with `kid`, asked for every 300 ms until `timeoutMs`. */
  async function signedWith(index: number, kid: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answer = await on(index, () => clientCredentials());
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      if (decodeProtectedHeader(answer.body.access_token!).kid === kid) return answer.body.access_token!;
      if (Date.now() > deadline) throw new Error(`replica ${'AB'[index]} did not sign with ${kid} within ${timeoutMs} ms`);
      await sleep(300);
    }
  }

  async function refresh(refreshToken: string): Promise<{ status: number; body: Record<string, string> }> {
    const res = await fetch(set.url('/token'), {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'web-app' }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  }

  it('a sign-in started on A completes on B: sign-in and consent posted to B, the code redeemed at B', async () => {
    const { config, verifier, state, url } = await authorizationRequest(set, 'web-app', { scope: 'notes:read', resource: NOTES });
    const browser = new Browser();
    const mark = set.balancer.served.length;
    const login = await on(A, () => browser.go(url, {}, REDIRECT));
    const tokens = await on(B, async () => {
      let page = await browser.submit(findForm(login, '/login'), { username: 'alice', password: PASSWORD }, undefined, REDIRECT);
      page = await browser.submit(findForm(page, '/confirm'), {}, undefined, REDIRECT);
      assert.ok(page.url.startsWith(REDIRECT), `back at the client: ${page.url}`);
      return client.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
    });
    // A: the authorization request and the sign-in page it leads to; B: everything after
    const route = routeSince(mark);
    const shown = route.join('\n');
    assert.equal(route[0], 'GET /auth → A', shown);
    assert.match(route[1]!, /^GET \/interaction\/[^/]+ → A$/, shown);
    assert.ok(route.slice(2).every((r) => r.endsWith('→ B')), shown);
    assert.ok(route.some((r) => /^POST \/interaction\/[^/]+\/login → B$/.test(r)), shown);
    assert.ok(route.some((r) => /^POST \/interaction\/[^/]+\/confirm → B$/.test(r)), shown);
    assert.equal(route.at(-1), 'POST /token → B', shown);

    const { payload } = await verifyWithJwksOf(A, tokens.access_token);
    assert.equal(payload.client_id, 'web-app');
    assert.equal(payload.scope, 'notes:read');
    assert.equal(await on(A, () => introspect(tokens.access_token)), true, 'active at A');
  });

  it('a device code approved through A is redeemed by polling B', async () => {
    const device = await on(A, () => startDevice(set));
    const pending = await on(B, () => pollDevice(set, device.device_code));
    assert.equal(pending.status, 400);
    assert.equal(pending.body.error, 'authorization_pending', 'B knows the device code A issued');

    const mark = set.balancer.served.length;
    const done = await on(A, () => approveDevice(set, new Browser(), device.user_code));
    assert.equal(done.status, 200);
    assert.ok(routeSince(mark).every((r) => r.endsWith('→ A')));

    await sleep(1100); // the polling interval
    const redeemed = await on(B, () => pollDevice(set, device.device_code));
    assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));
    assert.ok(redeemed.body.access_token && redeemed.body.refresh_token);
    assert.equal((await verifyWithJwksOf(A, redeemed.body.access_token)).payload.client_id, 'tv-app');
    const again = await on(A, () => pollDevice(set, device.device_code));
    assert.equal(again.body.error, 'invalid_grant', 'a device code is redeemed once, on any replica');
  });

  it('a refresh token rotated on A and presented again on B: the same successor within the grace window, the grant revoked on both after it', async () => {
    const { tokens } = await userTokens(set, 'web-app');
    const original = tokens.refresh_token!;
    assert.ok(original);

    const first = await on(A, () => refresh(original));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const rotatedAt = Date.now();
    assert.notEqual(first.body.refresh_token, original);
    const retried = await on(B, () => refresh(original));
    assert.ok(Date.now() - rotatedAt < GRACE * 1000, 'the retry was inside the window');
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.deepEqual(retried.body, first.body, 'B replays the answer A gave');
    for (const index of [A, B]) assert.equal(await on(index, () => introspect(first.body.access_token!)), true);

    await sleep(GRACE * 1000 + 500 - (Date.now() - rotatedAt));
    const late = await on(B, () => refresh(original));
    assert.equal(late.status, 400, JSON.stringify(late.body));
    assert.equal(late.body.error, 'invalid_grant');
    // the whole grant is gone, whichever replica is asked
    const successor = await on(A, () => refresh(first.body.refresh_token!));
    assert.equal(successor.body.error, 'invalid_grant', 'the successor is revoked on A');
    for (const index of [A, B]) {
      assert.equal(await on(index, () => introspect(first.body.access_token!)), false, `the successor's access token is inactive on ${'AB'[index]}`);
      assert.equal(await on(index, () => introspect(tokens.access_token)), false, `the first access token is inactive on ${'AB'[index]}`);
    }
  });

  it("a revocation through A reaches a verifier following B's revocation feed", async () => {
    set.balancer.route((req) => (req.url?.startsWith('/revocations') ? B : req.url?.startsWith('/token/revocation') ? A : undefined));
    const verifier = createVerifier({ issuer: set.issuer, resource: NOTES, revocation: { onError: () => {} } });
    try {
      await verifier.ready();
      const issued = await clientCredentials();
      assert.equal(issued.status, 200);
      const token = issued.body.access_token!;
      assert.equal((await verifier.verifyAccessToken(token)).clientId, 'nightly-report');

      const mark = set.balancer.served.length;
      const revoked = await fetch(set.url('/token/revocation'), { method: 'POST', headers: { ...FORM, authorization: basic('nightly-report') }, body: new URLSearchParams({ token }) });
      assert.equal(revoked.status, 200);
      const elapsed = await eventually(async () => (await codeOf(verifier.verifyAccessToken(token))) === 'ERR_TOKEN_REVOKED', PUSH_BOUND_MS);
      assert.ok(elapsed < PUSH_BOUND_MS, `refused ${elapsed} ms after the revocation returned`);
      assert.deepEqual(routeSince(mark).filter((r) => r.startsWith('POST /token/revocation')), ['POST /token/revocation → A']);
      const feeds = set.balancer.served.filter((s) => s.path.startsWith('/revocations'));
      assert.ok(feeds.length > 0 && feeds.every((s) => s.backend === B && s.status === 200), 'the feed followed is B’s');
    } finally {
      await verifier.close();
      set.balancer.route(undefined);
    }
  });

  it('the revocation feed is one log: a verifier that moves from B to A resumes with the event id B gave it', async () => {
    /** a feed connection through the balancer to replica `index`, once its backlog is sent */
    const follow = (index: number, headers: Record<string, string> = {}) =>
      on(index, async () => {
        const feed = new SseClient(set.url('/revocations'), headers);
        await feed.next((e) => e.event === 'ready');
        return feed;
      });
    const revoke = async () => {
      const token = (await clientCredentials()).body.access_token!;
      const res = await on(A, () => fetch(set.url('/token/revocation'), { method: 'POST', headers: { ...FORM, authorization: basic('nightly-report') }, body: new URLSearchParams({ token }) }));
      assert.equal(res.status, 200);
      return decodeJwt(token).jti!;
    };
    const feedB = await follow(B);
    let feedA: SseClient | undefined;
    try {
      const first = await feedB.next(revocationFor('token', await revoke()), 2000);
      const second = await feedB.next(revocationFor('token', await revoke()), 2000);
      assert.ok(first.id && second.id && first.id !== second.id);
      feedA = await follow(A, { 'last-event-id': first.id });
      const resumed = feedA.events.filter((e) => e.event === 'revocation');
      assert.deepEqual(resumed, [second], 'A sends what came after the id B gave, with the same id');
    } finally {
      await feedB.close();
      await feedA?.close();
    }
  });

  it('rate limits are shared: failed client authentications counted through A refuse the client on B', async () => {
    const source = { 'x-forwarded-for': '198.51.100.21' };
    // the right secret reaches a grant at B, from elsewhere
    assert.equal((await on(B, () => clientCredentials('nightly-report', { 'x-forwarded-for': '198.51.100.23' }))).status, 200);
    for (let i = 0; i < 3; i++) {
      const res = await on(A, () =>
        fetch(set.url('/token'), {
          method: 'POST',
          headers: { ...FORM, ...source, authorization: basic('nightly-report', 'not-the-secret-at-all') },
          body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES }),
        }),
      );
      assert.equal(res.status, 401, `attempt ${i + 1}`);
    }
    const limited = await on(B, () =>
      fetch(set.url('/token'), {
        method: 'POST',
        headers: { ...FORM, ...source, authorization: basic('nightly-report', 'another-wrong-secret') },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES }),
      }),
    );
    assert.equal(limited.status, 429, 'a fourth guess from that source, on the other replica');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    // the right secret reached a grant at B: it is no guess, and passes even there (docs/security.md)
    assert.equal((await on(B, () => clientCredentials('nightly-report', source))).status, 200);
    const elsewhere = await on(B, () => clientCredentials('nightly-report', { 'x-forwarded-for': '198.51.100.22' }));
    assert.equal(elsewhere.status, 200, 'another source is not limited');
  });

  it('rate limits are shared: a client that spent its token requests through A is refused by B', async () => {
    for (let i = 0; i < TOKEN_LIMIT; i++) {
      const answer = await on(A, () => clientCredentials('notes-server'));
      assert.equal(answer.status, 200, `request ${i + 1}: ${JSON.stringify(answer.body)}`);
    }
    const refused = await on(B, () => clientCredentials('notes-server'));
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.ok(Number(refused.retryAfter) >= 1);
    assert.equal((await on(A, () => clientCredentials('notes-server'))).status, 429, 'and by A');
  });

  it("keys rotated with the CLI are served by B, and tokens A signs with them verify against B's JWKS", async () => {
    const before = await clientCredentials();
    assert.equal(before.status, 200);
    const oldKid = decodeProtectedHeader(before.body.access_token!).kid;
    const oldKids = new Set((await on(B, jwks)).keys.map((k) => k.kid));
    assert.ok(oldKids.has(oldKid), 'positive control: B publishes the key in use');

    const rotated = await set.cli(['keys', 'rotate']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const added = [...rotated.stdout.matchAll(/^added (\S+) \((\w+)\), signing from (\S+)$/gm)].map((m) => ({ kid: m[1]!, alg: m[2]!, from: Date.parse(m[3]!) }));
    const newKey = added.find((k) => k.alg === 'ES256');
    assert.ok(newKey && !oldKids.has(newKey.kid) && newKey.from > Date.now(), rotated.stdout);
    const newKid = newKey.kid;

    // published by both within a reload interval, before it signs (activationDelay 2 s)
    for (const index of [B, A]) {
      await eventually(async () => (await on(index, jwks)).keys.some((k) => k.kid === newKid), 3000);
    }

    // A signs with it once it is active and A reloaded (few polls: token requests are rate limited)
    await sleep(newKey.from - Date.now());
    const signed = await signedWith(A, newKid, 6000);
    const { payload, protectedHeader } = await verifyWithJwksOf(B, signed);
    assert.equal(protectedHeader.kid, newKid);
    assert.equal(payload.client_id, 'nightly-report');
    assert.equal((await verifyWithJwksOf(B, before.body.access_token!)).protectedHeader.kid, oldKid, 'the retired key is still published');
    await signedWith(B, newKid, 3000);
  });
});
