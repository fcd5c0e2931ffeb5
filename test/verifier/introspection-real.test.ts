/**
 * The verifier's RFC 7662 introspection client against the real authorization server (not a
 * fake): a resource server client `rs` listed in the notes resource's `resourceServerClients`,
 * real access tokens from the authorization code flow, revocation at /token/revocation. The
 * revocation feed is made unreachable by the verifier's own `fetch`, so with
 * `revocation.onStale: 'introspect'` every token is checked by introspection, and the requests
 * that `fetch` saw at /token/introspection prove that it was.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { CALENDAR, fixtureConfig, NOTES } from '../helpers/fixtures.js';
import { userTokens } from '../helpers/flows.js';
import { createVerifier, VerifierError, type FetchLike, type Verifier } from '../../src/verifier/index.js';
import { Introspector } from '../../src/verifier/introspection.js';
import { checkIntrospection } from '../../src/verifier/verify.js';
import { FEED_PATH } from '../../src/revocation/feed.js';
import { codeOf } from './support.js';

const RS_SECRET = 'the-resource-server-secret-of-some-length';

/** A fetch that records each request's path and refuses the revocation feed (the feed is down). */
function recordingFetch() {
  const paths: string[] = [];
  const fetch: FetchLike = async (input, init) => {
    const { pathname } = new URL(String(input));
    paths.push(pathname);
    if (pathname === FEED_PATH) throw new TypeError('the revocation feed is unreachable (test)');
    return globalThis.fetch(input, init);
  };
  return { fetch, introspections: () => paths.filter((p) => p === '/token/introspection').length, paths };
}

describe('introspection against the real authorization server', () => {
  let t: TestServer;
  const verifiers: Verifier[] = [];
  const feedErrors: Error[] = [];

  function verifierWith(clientSecret: string) {
    const recorder = recordingFetch();
    const verifier = createVerifier({
      issuer: t.issuer,
      resource: NOTES,
      fetch: recorder.fetch,
      // every verification asks (no remembered answer), so a revocation shows at once
      introspection: { clientId: 'rs', clientSecret, cacheTtl: 0 },
      cache: false,
      revocation: { onStale: 'introspect', staleAfter: 1, readyTimeout: 0.2, onError: (e) => feedErrors.push(e) },
    });
    verifiers.push(verifier);
    return { verifier, ...recorder };
  }

  before(async () => {
    const fixture = fixtureConfig();
    t = await startServer({
      store: 'sqlite',
      config: {
        resources: fixture.resources!.map((r) => (r.uri === NOTES ? { ...r, resourceServerClients: ['notes-server', 'rs'] } : r)),
        clients: [...fixture.clients!, { client_id: 'rs', client_secret: RS_SECRET, grant_types: ['client_credentials'], resources: [NOTES] }],
      },
    });
  });
  after(async () => {
    for (const v of verifiers) await v.close();
    await t?.stop();
  });

  it('accepts an active token, and refuses it once revoked (RFC 7009), asking the AS each time', async () => {
    const { verifier, introspections } = verifierWith(RS_SECRET);
    const { tokens } = await userTokens(t, 'web-app', 'notes:read', NOTES);

    const auth = await verifier.verifyAccessToken(tokens.access_token);
    assert.equal(auth.clientId, 'web-app');
    assert.ok(auth.scopes.includes('notes:read'));
    assert.equal(auth.resource?.href, NOTES);
    assert.equal(introspections(), 1, 'the verifier introspected the token');
    assert.equal(verifier.revocationStatus()?.fresh, false, 'the feed is down: introspection stands in for it');
    assert.ok(feedErrors.length > 0, 'the feed failure was reported');

    const revoked = await fetch(t.url('/token/revocation'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token, token_type_hint: 'access_token', client_id: 'web-app' }),
    });
    assert.equal(revoked.status, 200);
    assert.equal(await codeOf(verifier.verifyAccessToken(tokens.access_token)), 'ERR_TOKEN_REVOKED');
    // authenticate() rejects with the VerifierError itself, whose message says why
    const err = await verifier.authenticate(`Bearer ${tokens.access_token}`).catch((e: unknown) => e);
    assert.ok(err instanceof VerifierError);
    assert.equal(err.code, 'ERR_TOKEN_REVOKED');
    assert.match(err.message, /reports the token inactive/);
    assert.equal(err.status, 401);
    assert.equal(introspections(), 3, 'each refusal came from introspection');
  });

  it('refuses a token for another resource; the AS does not describe it to this resource server either', async () => {
    const { verifier, introspections } = verifierWith(RS_SECRET);
    const { tokens } = await userTokens(t, 'web-app', 'calendar:read', CALENDAR);
    assert.equal(await codeOf(verifier.verifyAccessToken(tokens.access_token)), 'ERR_TOKEN_AUDIENCE');

    // the introspection client on its own, with the same real endpoint and credentials
    const recorder = recordingFetch();
    const introspector = new Introspector({ clientId: 'rs', clientSecret: RS_SECRET, endpoint: async () => t.url('/token/introspection'), cacheTtl: 0, fetch: recorder.fetch });
    const answer = await introspector.introspect(tokens.access_token);
    assert.equal(recorder.introspections(), 1);
    assert.equal(answer.active, false, 'rs is not a resource server client of the calendar');
    assert.throws(() => checkIntrospection(answer, { issuer: t.issuer, canonicalResource: NOTES, clockTolerance: 5 }), (e: VerifierError) => e.code === 'ERR_TOKEN_INVALID');
    // while a notes token is described, audience included, and passes the same check
    const notes = await userTokens(t, 'web-app', 'notes:read', NOTES);
    const active = await introspector.introspect(notes.tokens.access_token);
    assert.equal(active.active, true);
    assert.equal(active.client_id, 'web-app');
    checkIntrospection(active, { issuer: t.issuer, canonicalResource: NOTES, clockTolerance: 5 });
    assert.equal(introspections(), 0, 'the verifier refused on the audience before asking');
  });

  it('wrong resource server credentials: a clear error, never acceptance', async () => {
    const { verifier, introspections } = verifierWith('not-the-resource-server-secret');
    const { tokens } = await userTokens(t, 'web-app', 'notes:read', NOTES);
    assert.equal(await codeOf(verifier.verifyAccessToken(tokens.access_token)), 'ERR_AUTHZ_UNAVAILABLE');
    const err = await verifier.authenticate(`Bearer ${tokens.access_token}`).catch((e: unknown) => e);
    assert.ok(err instanceof VerifierError, `refused (${String(err)})`);
    assert.equal(err.code, 'ERR_AUTHZ_UNAVAILABLE');
    assert.match(err.message, /HTTP 401 \(check the introspection client credentials\)/);
    assert.equal(introspections(), 2, 'both refusals came from the introspection endpoint');
    // the MCP server answers 503, not 401: the client's token may well be good
    assert.equal(verifier.challenge(err).status, 503);
  });
});
