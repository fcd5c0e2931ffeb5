/**
 * Revocation: the feed client against a test SSE server that speaks the feed protocol
 * (revocation / heartbeat / ready events, Last-Event-ID resume), staleness (fail closed or
 * introspect), and one end-to-end run against the real authorization server's feed.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { createVerifier, VerifierError, type Verifier, type VerifierOptions } from '../../src/verifier/index.js';
import { RevokedSet, revocationHash } from '../../src/verifier/revocation.js';
import { feedEvent } from '../../src/revocation/feed-events.js';
import { sha256Base64urlNow, webCryptoSha256Base64url } from '../../src/verifier/util.js';
import { readEventStream, type ServerSentEvent } from '../../src/verifier/sse.js';
import { clientCredentialsToken, codeOf, eventually, now, startFakeAs, NOTES, SECRET, type FakeAs } from './support.js';
import { PUSH_BOUND_MS } from '../helpers/timing.js';

const fakes: FakeAs[] = [];
const verifiers: Verifier[] = [];

async function setup(revocation: VerifierOptions['revocation'] = {}, extra: Partial<VerifierOptions> = {}, heartbeatMs = 100) {
  const as = await startFakeAs({ heartbeatMs });
  fakes.push(as);
  const errors: Error[] = [];
  const verifier = createVerifier({ issuer: as.issuer, resource: NOTES, revocation: { staleAfter: 2, onError: (e) => errors.push(e), ...revocation }, ...extra });
  verifiers.push(verifier);
  return { as, verifier, errors };
}

after(async () => {
  for (const v of verifiers) await v.close();
  for (const as of fakes) await as.stop();
});

const refusedAs = (verifier: Verifier, token: string, code: string) => async () => (await codeOf(verifier.verifyAccessToken(token))) === code;

describe('revocation feed client', () => {
  it('a token revoked by jti is refused once the event is pushed; others still pass', async () => {
    const { as, verifier } = await setup();
    const token = await as.sign({ jti: 'jti-1' });
    const other = await as.sign({ jti: 'jti-2' });
    await verifier.verifyAccessToken(token);
    as.feed.revoke({ type: 'token', jti: 'jti-1', until: now() + 600 });
    const elapsed = await eventually(refusedAs(verifier, token, 'ERR_TOKEN_REVOKED'), PUSH_BOUND_MS);
    assert.ok(elapsed < PUSH_BOUND_MS, `${elapsed} ms`);
    await verifier.verifyAccessToken(other);
    const err = await verifier.verifyAccessToken(token).catch((e: VerifierError) => e);
    assert.ok(err instanceof VerifierError);
    assert.equal(err.status, 401);
    assert.equal(err.oauthError, 'invalid_token');
  });

  it('by grant and by subject (tokens issued at or before `before`)', async () => {
    const { as, verifier } = await setup();
    const granted = await as.sign({ grant_id: 'grant-9' });
    const oldToken = await as.sign({ sub: 'user-7', iat: now() - 30 });
    const newToken = await as.sign({ sub: 'user-7', iat: now() + 1 });
    for (const tk of [granted, oldToken, newToken]) await verifier.verifyAccessToken(tk);
    as.feed.revoke({ type: 'grant', grantId: 'grant-9', until: now() + 600 });
    as.feed.revoke({ type: 'subject', sub: 'user-7', before: now() - 10, until: now() + 600 });
    assert.ok((await eventually(refusedAs(verifier, granted, 'ERR_TOKEN_REVOKED'), PUSH_BOUND_MS)) < PUSH_BOUND_MS);
    assert.ok((await eventually(refusedAs(verifier, oldToken, 'ERR_TOKEN_REVOKED'), PUSH_BOUND_MS)) < PUSH_BOUND_MS);
    await verifier.verifyAccessToken(newToken);
  });

  it('a fresh verifier waits for the backlog: a token revoked before it started is refused at once', async () => {
    const { as, verifier } = await setup();
    as.feed.revoke({ type: 'token', jti: 'old-revoked', until: now() + 600 });
    assert.equal(await codeOf(verifier.verifyAccessToken(await as.sign({ jti: 'old-revoked' }))), 'ERR_TOKEN_REVOKED');
    assert.equal(as.feedHistory[0]!.accept, 'text/event-stream');
  });

  it('without `ready` in time the first verification fails closed after readyTimeout', async () => {
    const { as, verifier } = await setup({ readyTimeout: 0.3 });
    as.feed.sendReady = false;
    const start = Date.now();
    const err = await verifier.verifyAccessToken(await as.sign()).catch((e: VerifierError) => e);
    assert.equal((err as VerifierError).code, 'ERR_AUTHZ_UNAVAILABLE');
    assert.ok(Date.now() - start >= 250 && Date.now() - start < 2000);
    assert.equal(verifier.revocationStatus()?.ready, false);
  });

  it('reconnects after the server kills the connection, resuming with Last-Event-ID, losing nothing', async () => {
    const { as, verifier, errors } = await setup();
    const a = await as.sign({ jti: 'before-drop' });
    const b = await as.sign({ jti: 'while-down' });
    const c = await as.sign({ jti: 'after-reconnect' });
    await verifier.verifyAccessToken(a);
    const idA = as.feed.revoke({ type: 'token', jti: 'before-drop', until: now() + 600 });
    await eventually(refusedAs(verifier, a, 'ERR_TOKEN_REVOKED'), 1000);
    assert.equal(as.feedHistory.length, 1);
    assert.equal(as.feedHistory[0]!.lastEventId, undefined);

    as.feed.dropAll();
    const idB = as.feed.revokeQuietly({ type: 'token', jti: 'while-down', until: now() + 600 });
    await as.feed.waitForConnections(2, () => as.feedHistory.length);
    assert.equal(as.feedHistory[1]!.lastEventId, idA, 'the reconnect carried Last-Event-ID');
    await eventually(refusedAs(verifier, b, 'ERR_TOKEN_REVOKED'), 2000);
    assert.equal(await codeOf(verifier.verifyAccessToken(a)), 'ERR_TOKEN_REVOKED', 'earlier revocations are kept');

    as.feed.revoke({ type: 'token', jti: 'after-reconnect', until: now() + 600 });
    await eventually(refusedAs(verifier, c, 'ERR_TOKEN_REVOKED'), 1000);
    assert.equal(verifier.revocationStatus()?.lastEventId, String(Number(idB) + 1));
    assert.ok(errors.some((e) => /closed|terminated|abort|socket/i.test(e.message)), 'the drop was reported to onError');
    assert.equal(verifier.revocationStatus()?.reconnects, 1);
  });

  it('told to reconnect (a server shutting down), reconnects at once, resuming, and reports no problem', async () => {
    const { as, verifier, errors } = await setup();
    const a = await as.sign({ jti: 'before-shutdown' });
    await verifier.verifyAccessToken(a);
    const id = as.feed.revoke({ type: 'token', jti: 'before-shutdown', until: now() + 600 });
    await eventually(refusedAs(verifier, a, 'ERR_TOKEN_REVOKED'), 1000);
    as.feed.askReconnect();
    await as.feed.waitForConnections(2, () => as.feedHistory.length);
    assert.equal(as.feedHistory[1]!.lastEventId, id, 'resumed with Last-Event-ID');
    assert.equal(verifier.revocationStatus()?.reconnects, 1);
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
      'an announced reconnection is not a problem',
    );
    assert.equal(await codeOf(verifier.verifyAccessToken(a)), 'ERR_TOKEN_REVOKED');
  });

  it('stale feed, fail-closed: every verification is 503 with Retry-After until heartbeats resume', async () => {
    const { as, verifier } = await setup({ staleAfter: 0.5 });
    const token = await as.sign();
    await verifier.verifyAccessToken(token);
    as.feed.silent = true;
    await eventually(refusedAs(verifier, token, 'ERR_AUTHZ_UNAVAILABLE'), 2000);
    const err = await verifier.verifyAccessToken(token).catch((e: unknown) => e);
    const challenge = verifier.challenge(err);
    assert.equal(challenge.status, 503);
    assert.ok(Number(challenge.headers['Retry-After']) >= 1);
    assert.equal(verifier.revocationStatus()?.fresh, false);
    // an invalid token is still a plain 401
    assert.equal(await codeOf(verifier.verifyAccessToken(await as.sign({ aud: 'https://elsewhere.example.com' }))), 'ERR_TOKEN_AUDIENCE');
    as.feed.silent = false;
    await eventually(async () => (await codeOf(verifier.verifyAccessToken(token))) === 'resolved', 8000);
  });

  it("stale feed, onStale 'introspect': asks the authorization server about each token", async () => {
    const { as, verifier } = await setup({ staleAfter: 0.5, onStale: 'introspect' }, { introspection: { clientId: 'rs', clientSecret: 'secret', cacheTtl: 0 } });
    const activeToken = await as.sign({ jti: 'live' });
    const revokedToken = await as.sign({ jti: 'dead' });
    as.introspection.set(activeToken, { active: true });
    await verifier.verifyAccessToken(activeToken);
    assert.equal(as.introspectionCalls.length, 0, 'no introspection while the feed is fresh');
    as.feed.silent = true;
    await eventually(async () => verifier.revocationStatus()?.fresh === false, 2000);
    await verifier.verifyAccessToken(activeToken);
    assert.ok(as.introspectionCalls.length >= 1);
    assert.equal(await codeOf(verifier.verifyAccessToken(revokedToken)), 'ERR_TOKEN_REVOKED');
  });

  it('close() stops the feed', async () => {
    const { as, verifier } = await setup();
    await verifier.ready();
    assert.equal(as.feed.connections.length, 1);
    await verifier.close();
    await eventually(async () => as.feed.connections.length === 0, 2000);
    assert.equal(verifier.revocationStatus()?.connected, false);
  });
});

describe('revocation is on by default', () => {
  /** A fake authorization server; `withoutFeed` leaves revocation_feed_endpoint out of its metadata. */
  async function fakeAs(withoutFeed = false) {
    const as = await startFakeAs({ heartbeatMs: 100 });
    fakes.push(as);
    if (withoutFeed) as.metadata.revocation_feed_endpoint = undefined;
    return as;
  }
  const track = (verifier: Verifier) => (verifiers.push(verifier), verifier);

  /** Console warnings while `run` runs (the default reporter writes there). */
  async function consoleWarnings<T>(run: (warnings: string[]) => Promise<T>): Promise<T> {
    const warnings: string[] = [];
    const original = console.warn;
    console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' '));
    try {
      return await run(warnings);
    } finally {
      console.warn = original;
    }
  }

  it('createVerifier({ issuer, resource }) follows the feed from creation: a revoked token is refused', async () => {
    const as = await fakeAs();
    const verifier = track(createVerifier({ issuer: as.issuer, resource: NOTES }));
    await as.feed.waitForConnections(1, () => as.feedHistory.length);
    assert.equal(as.hits.get('/.well-known/oauth-authorization-server'), 1, 'found from the metadata, before any verification');
    const token = await as.sign({ jti: 'default-on' });
    await verifier.verifyAccessToken(token);
    as.feed.revoke({ type: 'token', jti: 'default-on', until: now() + 600 });
    assert.ok((await eventually(refusedAs(verifier, token, 'ERR_TOKEN_REVOKED'), PUSH_BOUND_MS)) < PUSH_BOUND_MS);
    assert.equal(verifier.revocationStatus()?.absent, false);
  });

  it('revocation: false is the explicit opt-out: no feed is followed and a revoked token passes', async () => {
    const as = await fakeAs();
    const verifier = track(createVerifier({ issuer: as.issuer, resource: NOTES, revocation: false }));
    const token = await as.sign({ jti: 'opted-out' });
    as.feed.revoke({ type: 'token', jti: 'opted-out', until: now() + 600 });
    assert.equal((await verifier.verifyAccessToken(token)).clientId, 'test-client');
    assert.equal(as.feedHistory.length, 0);
    assert.equal(verifier.revocationStatus(), undefined);
  });

  it('an authorization server without a feed: said at start, ready() rejects, every token is refused with 503', async () => {
    const as = await fakeAs(true);
    await consoleWarnings(async (warnings) => {
      const verifier = track(createVerifier({ issuer: as.issuer, resource: NOTES }));
      await eventually(async () => warnings.length > 0, 2000);
      assert.match(warnings[0]!, /^mcp-authz\/verifier: the authorization server advertises no revocation feed \(revocation_feed_endpoint\): every token is refused/);
      await assert.rejects(verifier.ready(), (err: VerifierError) => err.code === 'ERR_AUTHZ_UNAVAILABLE' && /advertises no revocation feed/.test(err.message));
      const err = (await verifier.authenticate(`Bearer ${await as.sign()}`).catch((e: unknown) => e)) as VerifierError;
      assert.equal(err.code, 'ERR_AUTHZ_UNAVAILABLE');
      assert.match(err.message, /advertises no revocation feed/);
      assert.equal(verifier.challenge(err).status, 503);
      assert.equal(warnings.length, 1, 'retries are not repeated on the console within a minute');
    });
  });

  it('required: false accepts an authorization server without a feed, after a loud warning', async () => {
    const as = await fakeAs(true);
    await consoleWarnings(async (warnings) => {
      const verifier = track(createVerifier({ issuer: as.issuer, resource: NOTES, revocation: { required: false } }));
      await verifier.ready();
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /WARNING: the authorization server advertises no revocation feed .* revoked tokens are accepted until they expire/);
      assert.equal((await verifier.verifyAccessToken(await as.sign())).clientId, 'test-client');
      assert.equal(verifier.revocationStatus()?.absent, true);
    });
  });

  it('a wrong revocation option is a TypeError naming it', () => {
    for (const revocation of ['yes', true, null, 0]) {
      assert.throws(() => createVerifier({ issuer: 'https://auth.example.com', resource: NOTES, revocation: revocation as never }), /"revocation" must be an object of options, or false/);
    }
    assert.throws(() => createVerifier({ issuer: 'https://auth.example.com', resource: NOTES, revocation: { required: 'no' as never } }), /"revocation.required"/);
  });
});

describe('revocation building blocks', () => {
  it('RevokedSet forgets entries after `until` and merges subject cut-offs', () => {
    const set = new RevokedSet();
    set.add({ type: 'token', key: 'j', until: 100 }, 50);
    set.add({ type: 'token', key: 'stale', until: 40 }, 50);
    assert.equal(set.isRevoked({ token: 'j' }, 60), true);
    assert.equal(set.isRevoked({ token: 'stale' }, 60), false);
    assert.equal(set.isRevoked({ token: 'j' }, 101), false);
    set.add({ type: 'subject', key: 's', before: 70, until: 200 }, 60);
    assert.equal(set.isRevoked({ subject: 's', iat: 70 }, 80), true);
    assert.equal(set.isRevoked({ subject: 's', iat: 71 }, 80), false);
    assert.equal(set.isRevoked({ subject: 's' }, 80), true, 'no iat: cannot prove it is newer');
    set.prune(150);
    assert.deepEqual(set.size, { tokens: 0, grants: 0, subjects: 1 });
  });

  it('the feed names what it revokes by hashes the server and the verifier compute alike', async () => {
    const stored = [
      { type: 'token', jti: 'jti-Ω-1', until: 100 },
      { type: 'grant', grantId: 'grant-2', until: 100 },
      { type: 'subject', sub: 'acct-3', before: 50, until: 100 },
    ] as const;
    for (const event of stored) {
      const wire = feedEvent(event);
      const identifier = 'jti' in event ? event.jti : 'grantId' in event ? event.grantId : event.sub;
      assert.equal(wire.hash, await revocationHash(event.type, identifier), event.type);
      assert.match(wire.hash, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(!JSON.stringify(wire).includes(identifier), 'the identifier is not on the wire');
    }
    // runtimes without node:crypto hash with Web Crypto, to the same values
    assert.equal(await webCryptoSha256Base64url('jti-Ω-1'), sha256Base64urlNow('jti-Ω-1'));
    // the kinds are kept apart: the same string as a jti and as a subject hashes differently
    assert.notEqual(await revocationHash('token', 'x'), await revocationHash('subject', 'x'));
  });

  it('the SSE parser: CRLF/CR/LF, split chunks, comments, multi-line data, ids', async () => {
    const chunks = [': comment\r\nid: 1\r\nevent: revocation\r\ndata: {"a":', '1}\r', '\n\r\nevent: heartbeat\rdata: x\rdata: y\r\rdata: plain\n\nid: 2\n\n'];
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
        controller.close();
      },
    });
    const events: ServerSentEvent[] = [];
    await readEventStream(stream, (e) => events.push(e));
    assert.deepEqual(events, [
      { event: 'revocation', data: '{"a":1}', id: '1' },
      { event: 'heartbeat', data: 'x\ny', id: undefined },
      { event: 'message', data: 'plain', id: undefined },
    ]);
  });
});

describe('revocation end to end with the real authorization server feed', () => {
  let t: TestServer;
  let verifier: Verifier;
  before(async () => {
    t = await startServer({ store: 'sqlite' });
    verifier = createVerifier({ issuer: t.issuer, resource: NOTES });
  });
  after(async () => {
    await verifier.close();
    await t.stop();
  });

  it('a token revoked at the AS (RFC 7009) is refused, pushed on the feed', async () => {
    const token = await clientCredentialsToken(t);
    const other = await clientCredentialsToken(t);
    await verifier.verifyAccessToken(token);
    assert.equal(verifier.revocationStatus()?.ready, true);
    const res = await fetch(t.url('/token/revocation'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    });
    assert.equal(res.status, 200);
    const elapsed = await eventually(refusedAs(verifier, token, 'ERR_TOKEN_REVOKED'), PUSH_BOUND_MS);
    assert.ok(elapsed < PUSH_BOUND_MS, `${elapsed} ms`);
    await verifier.verifyAccessToken(other);
  });
});
