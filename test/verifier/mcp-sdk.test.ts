/**
 * The MCP SDK's own `requireBearerAuth({ verifier })`, unchanged, given the verifier from the
 * main `mcp-authz/verifier` entry (no subpath, no wrapping): 200 with `req.auth` for a good
 * token; 401 with the challenge for a missing, malformed, expired, foreign or revoked token; 403
 * `insufficient_scope` where the SDK checks scopes. The SDK sorts errors with `instanceof` against
 * its own classes, so the verifier's refusals are instances of them (and still VerifierErrors).
 * When the authorization server cannot be reached the SDK's middleware answers its hard-coded
 * 500 for `ServerError`, with our description and no stack (the verifier's own adapters answer
 * 503 with Retry-After). The SDK version in devDependencies; test/package/sdk-versions.test.ts
 * runs the same against the oldest version the peer range allows, installed in a folder of its own.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError, InsufficientScopeError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { createVerifier, VerifierError, isVerifierError, type Verifier } from '../../src/verifier/index.js';
import { createVerifier as createSdkVerifier } from '../../src/verifier/mcp-sdk.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { clientCredentialsToken, eventually, now, startFakeAs, NOTES, SECRET, type FakeAs } from './support.js';
import { PUSH_BOUND_MS } from '../helpers/timing.js';

describe('the SDK requireBearerAuth, unchanged, with the verifier from mcp-authz/verifier', () => {
  let t: TestServer;
  let stranger: FakeAs;
  let http: Server;
  let base: string;
  const verifiers: Verifier[] = [];

  before(async () => {
    t = await startServer({ store: 'sqlite' });
    stranger = await startFakeAs();
    const verifier = createVerifier({ issuer: t.issuer, resource: NOTES });
    // nothing listens on port 9: the authorization server cannot be reached
    const unreachable = createVerifier({ issuer: 'http://127.0.0.1:9', resource: NOTES, revocation: { onError: () => {} } });
    const subpath = createSdkVerifier({ issuer: t.issuer, resource: NOTES });
    verifiers.push(verifier, unreachable, subpath);
    await verifier.ready();

    const app = express();
    const echo = (req: express.Request, res: express.Response) => res.json({ clientId: req.auth?.clientId, scopes: req.auth?.scopes });
    const gate = (v: Verifier, requiredScopes: string[] = []) => requireBearerAuth({ verifier: v, requiredScopes, resourceMetadataUrl: v.metadataUrl });
    app.get('/read', gate(verifier), echo);
    app.get('/write', gate(verifier, ['notes:write']), echo);
    app.get('/down', gate(unreachable), echo);
    app.get('/subpath', gate(subpath), echo);
    http = createServer(app);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const v of verifiers) await v.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await stranger.stop();
    await t.stop();
  });

  const get = async (path: string, bearer?: string) => {
    const res = await fetch(`${base}${path}`, { headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` } });
    return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '', body: (await res.json()) as Record<string, unknown> };
  };
  const invalidToken = (answer: Awaited<ReturnType<typeof get>>, what: string) => {
    assert.equal(answer.status, 401, what);
    assert.equal(answer.body.error, 'invalid_token', what);
    assert.match(answer.challenge, /^Bearer error="invalid_token", error_description="[^"]+"/, what);
    assert.match(answer.challenge, /resource_metadata="https:\/\/notes\.example\.com\/\.well-known\/oauth-protected-resource\/mcp"/, what);
  };

  it('a good token → 200 with req.auth', async () => {
    const answer = await get('/read', await clientCredentialsToken(t));
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { clientId: 'nightly-report', scopes: ['notes:read'] });
  });

  it('no token → 401 with the challenge (the SDK itself)', async () => {
    const answer = await get('/read');
    assert.equal(answer.status, 401);
    assert.match(answer.challenge, /resource_metadata=/);
  });

  it('malformed, tampered, expired and foreign tokens → 401 invalid_token, never 500', async () => {
    const token = await clientCredentialsToken(t);
    const [h, p, s] = token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), scope: 'notes:write' })).toString('base64url')}.${s}`;
    // signed by another authorization server, claiming to be ours
    const foreign = await stranger.sign({ iss: t.issuer });
    const otherIssuer = await stranger.sign();
    invalidToken(await get('/read', 'not-a-jwt'), 'malformed');
    invalidToken(await get('/read', tampered), 'tampered');
    invalidToken(await get('/read', foreign), 'signed with a foreign key');
    invalidToken(await get('/read', otherIssuer), 'issued by another server');
    // expired: signed by a key the verifier trusts
    const expiringAs = await startFakeAs();
    const expiring = createVerifier({ issuer: expiringAs.issuer, resource: NOTES });
    verifiers.push(expiring);
    const app = express();
    app.get('/x', requireBearerAuth({ verifier: expiring }), (_req, res) => res.json({}));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const at = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
      const fresh = await fetch(at, { headers: { authorization: `Bearer ${await expiringAs.sign()}` } });
      assert.equal(fresh.status, 200);
      const expired = await fetch(at, { headers: { authorization: `Bearer ${await expiringAs.sign({ iat: now() - 600, exp: now() - 60 })}` } });
      assert.equal(expired.status, 401);
      assert.match(expired.headers.get('www-authenticate') ?? '', /error="invalid_token", error_description="The access token has expired"/);
    } finally {
      server.closeAllConnections();
      server.close();
      await expiringAs.stop();
    }
  });

  it('a revoked token → 401 once the revocation is pushed on the feed', async () => {
    const token = await clientCredentialsToken(t);
    assert.equal((await get('/read', token)).status, 200);
    const revoked = await fetch(t.url('/token/revocation'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ token }),
    });
    assert.equal(revoked.status, 200);
    const elapsed = await eventually(async () => (await get('/read', token)).status === 401, PUSH_BOUND_MS);
    assert.ok(elapsed < PUSH_BOUND_MS, `${elapsed} ms`);
    const answer = await get('/read', token);
    invalidToken(answer, 'revoked');
    assert.equal(answer.body.error_description, 'The access token has been revoked');
  });

  it('a missing scope → 403 insufficient_scope', async () => {
    const answer = await get('/write', await clientCredentialsToken(t));
    assert.equal(answer.status, 403);
    assert.match(answer.challenge, /error="insufficient_scope"/);
    assert.match(answer.challenge, /scope="notes:write"/);
  });

  it('the authorization server unreachable → the SDK answers server_error (its fixed 500), with our description and nothing internal', async () => {
    const answer = await get('/down', await clientCredentialsToken(t));
    assert.equal(answer.status, 500, "the SDK's requireBearerAuth has no 503: ServerError is 500 there");
    assert.deepEqual(answer.body, { error: 'server_error', error_description: 'Access token verification is temporarily unavailable' });
  });

  it('what verifyAccessToken throws is the SDK class and a VerifierError at once; the mcp-sdk subpath still works', async () => {
    const [verifier, unreachable] = verifiers as [Verifier, Verifier];
    const malformed = await verifier.verifyAccessToken('not-a-jwt').catch((e: unknown) => e);
    assert.ok(malformed instanceof InvalidTokenError);
    assert.ok(malformed instanceof VerifierError);
    assert.ok(isVerifierError(malformed));
    assert.equal((malformed as VerifierError).code, 'ERR_TOKEN_MALFORMED');
    assert.equal(verifier.challenge(malformed).status, 401, 'our adapters read it as before');
    const down = await unreachable.verifyAccessToken(await clientCredentialsToken(t)).catch((e: unknown) => e);
    assert.ok(down instanceof ServerError);
    assert.equal(unreachable.challenge(down).status, 503, 'our adapters answer 503');
    assert.ok(!(down instanceof InsufficientScopeError));
    // authenticate (what our adapters call) keeps plain VerifierErrors
    const plain = await verifier.authenticate('Bearer not-a-jwt').catch((e: unknown) => e);
    assert.ok(plain instanceof VerifierError && !(plain instanceof InvalidTokenError));
    assert.equal((await get('/subpath', await clientCredentialsToken(t))).status, 200);
    invalidToken(await get('/subpath', 'not-a-jwt'), 'subpath');
  });
});
