/**
 * Token verification with real tokens: client-credentials tokens from a real mcp-authz
 * server, forgeries of them, and tokens signed by a fake authorization server's own key
 * for checks past the signature (typ, iss, aud, exp, nbf, cnf, algorithms), plus
 * introspection of opaque tokens.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { SignJWT, generateKeyPair } from 'jose';
import { startServer, type TestServer } from '../helpers/server.js';
import { VerifiedTokens } from '../../src/verifier/token-cache.js';
import { createVerifier, VerifierError, type Verifier } from '../../src/verifier/index.js';
import { metadataCandidates } from '../../src/verifier/discovery.js';
import { clientCredentialsToken, codeOf, now, startFakeAs, NOTES, type FakeAs } from './support.js';

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

describe('verifier: tokens from the real authorization server', () => {
  let t: TestServer;
  let verifier: Verifier;
  let token: string;
  before(async () => {
    t = await startServer({ store: 'sqlite' });
    verifier = createVerifier({ issuer: t.issuer, resource: NOTES });
    token = await clientCredentialsToken(t);
  });
  after(async () => {
    await verifier.close();
    await t.stop();
  });

  it('a client-credentials token verifies to the SDK AuthInfo shape', async () => {
    const info = await verifier.verifyAccessToken(token);
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(info.token, token);
    assert.equal(info.clientId, 'nightly-report');
    assert.deepEqual(info.scopes, ['notes:read']);
    assert.equal(info.expiresAt, payload.exp);
    assert.ok(info.expiresAt > now());
    assert.ok(info.resource instanceof URL);
    assert.equal(info.resource.href, NOTES);
    assert.equal(info.extra?.subject, 'nightly-report');
    assert.equal(info.extra?.jti, payload.jti);
    assert.equal(info.extra?.issuer, t.issuer);
    assert.equal('grantId' in info.extra!, false, 'no grant_id claim on a client-credentials token');
  });

  it('authenticate() takes the Authorization header (Bearer, case-insensitive)', async () => {
    assert.equal((await verifier.authenticate(`Bearer ${token}`)).clientId, 'nightly-report');
    assert.equal((await verifier.authenticate(`bearer ${token}`)).clientId, 'nightly-report');
    assert.equal(await codeOf(verifier.authenticate(undefined)), 'ERR_TOKEN_MISSING');
    assert.equal(await codeOf(verifier.authenticate('')), 'ERR_TOKEN_MISSING');
    assert.equal(await codeOf(verifier.authenticate(`Basic ${b64url('a:b')}`)), 'ERR_TOKEN_MISSING');
    assert.equal(await codeOf(verifier.authenticate('Bearer')), 'ERR_TOKEN_MALFORMED');
    assert.equal(await codeOf(verifier.authenticate(`Bearer ${token} extra`)), 'ERR_TOKEN_MALFORMED');
    assert.equal(await codeOf(verifier.authenticate(`Bearer ${'a'.repeat(20_000)}`)), 'ERR_TOKEN_MALFORMED');
  });

  it('required scopes: present → ok, missing → 403 insufficient_scope naming all of them', async () => {
    await verifier.authenticate(`Bearer ${token}`, { requiredScopes: ['notes:read'] });
    await assert.rejects(verifier.authenticate(`Bearer ${token}`, { requiredScopes: ['notes:read', 'notes:write'] }), (err: VerifierError) => {
      assert.equal(err.code, 'ERR_INSUFFICIENT_SCOPE');
      assert.equal(err.status, 403);
      assert.equal(err.oauthError, 'insufficient_scope');
      assert.deepEqual(err.requiredScopes, ['notes:read', 'notes:write']);
      return true;
    });
  });

  it('the resource is compared canonically (case, trailing slash)', async () => {
    const v = createVerifier({ issuer: t.issuer, resource: 'HTTPS://Notes.Example.com/mcp/' });
    const info = await v.verifyAccessToken(token);
    assert.equal(info.clientId, 'nightly-report');
    assert.equal(v.protectedResourceMetadata().resource, 'HTTPS://Notes.Example.com/mcp/', 'published verbatim');
  });

  it('a token for another resource is refused (audience)', async () => {
    const v = createVerifier({ issuer: t.issuer, resource: 'https://calendar.example.com/mcp' });
    assert.equal(await codeOf(v.verifyAccessToken(token)), 'ERR_TOKEN_AUDIENCE');
    const v2 = createVerifier({ issuer: t.issuer, resource: 'https://notes.example.com/mcp/other' });
    assert.equal(await codeOf(v2.verifyAccessToken(token)), 'ERR_TOKEN_AUDIENCE');
  });

  it('a tampered payload is refused', async () => {
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    claims.scope = 'notes:read notes:write notes:delete';
    const forged = `${header}.${b64url(JSON.stringify(claims))}.${signature}`;
    const err = await verifier.verifyAccessToken(forged).catch((e: VerifierError) => e);
    assert.ok(err instanceof VerifierError);
    assert.equal(err.code, 'ERR_TOKEN_INVALID');
    assert.equal(err.status, 401);
    assert.equal(err.oauthError, 'invalid_token');
    assert.ok(!err.message.includes(forged) && !err.description.includes(forged), 'the token is never in a message');
  });

  it('alg none is refused', async () => {
    const [, payload] = token.split('.') as [string, string];
    const header = b64url(JSON.stringify({ alg: 'none', typ: 'at+jwt' }));
    for (const forged of [`${header}.${payload}.`, `${header}.${payload}`]) {
      const code = await codeOf(verifier.verifyAccessToken(forged));
      assert.ok(['ERR_TOKEN_INVALID', 'ERR_TOKEN_MALFORMED'].includes(code), code);
    }
  });

  it('HS256 signed with the AS public key is refused', async () => {
    const jwks = (await (await fetch(t.url('/jwks'))).json()) as { keys: Array<Record<string, string>> };
    const [, payload] = token.split('.') as [string, string];
    for (const jwk of jwks.keys) {
      for (const secret of [JSON.stringify(jwk), jwk.x ?? jwk.n!]) {
        const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: jwk.kid }));
        const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
        assert.equal(await codeOf(verifier.verifyAccessToken(`${header}.${payload}.${signature}`)), 'ERR_TOKEN_INVALID');
      }
    }
  });

  it('a token signed with another key (same kid) is refused', async () => {
    const { header, claims } = decode(token);
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(privateKey);
    assert.equal(await codeOf(verifier.verifyAccessToken(forged)), 'ERR_TOKEN_INVALID');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const unknownKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'unknown' }).sign(other);
    assert.equal(await codeOf(verifier.verifyAccessToken(unknownKid)), 'ERR_TOKEN_INVALID');
  });

  it("metadata whose issuer differs from the configured one (even by host spelling) is not used: 503, not 401", async () => {
    const v = createVerifier({ issuer: t.issuer.replace('127.0.0.1', 'localhost'), resource: NOTES, revocation: { onError: () => {} } });
    // authenticate: the plain VerifierError, whose message has the detail for logs
    const err = await v.authenticate(`Bearer ${token}`).catch((e: VerifierError) => e);
    await v.close();
    assert.ok(err instanceof VerifierError);
    assert.equal(err.code, 'ERR_AUTHZ_UNAVAILABLE');
    assert.equal(err.status, 503);
    assert.match(err.message, /names issuer/);
  });

  it('an opaque token without introspection configured is malformed', async () => {
    assert.equal(await codeOf(verifier.verifyAccessToken('opaque-token-value')), 'ERR_TOKEN_MALFORMED');
  });
});

describe('verifier: checks past the signature (fake authorization server, own key)', () => {
  let as: FakeAs;
  let verifier: Verifier;
  before(async () => {
    as = await startFakeAs();
    verifier = createVerifier({ issuer: as.issuer, resource: NOTES, scopeHierarchy: { 'notes:admin': ['notes:write'], 'notes:write': ['notes:read'] } });
  });
  after(() => as.stop());

  it('baseline: a well-formed token verifies; grant_id, aud arrays and scope hierarchies', async () => {
    const token = await as.sign({ aud: ['https://other.example.com', NOTES], grant_id: 'grant-1', scope: 'notes:admin' });
    const info = await verifier.verifyAccessToken(token);
    assert.equal(info.clientId, 'test-client');
    assert.equal(info.extra?.grantId, 'grant-1');
    assert.equal(info.extra?.subject, 'user-1');
    assert.deepEqual(info.extra?.tokenScopes, ['notes:admin']);
    assert.deepEqual(info.scopes, ['notes:admin', 'notes:write', 'notes:read']);
  });

  it('metadata and keys are fetched once and cached', async () => {
    const before = { md: as.hits.get('/.well-known/oauth-authorization-server') ?? 0, jwks: as.hits.get('/jwks') ?? 0 };
    for (let i = 0; i < 5; i++) await verifier.verifyAccessToken(await as.sign());
    assert.equal(as.hits.get('/.well-known/oauth-authorization-server'), Math.max(before.md, 1));
    assert.equal(as.hits.get('/jwks'), Math.max(before.jwks, 1));
  });

  it('typ: at+jwt and application/at+jwt pass; an ID token (typ JWT) or no typ is refused', async () => {
    await verifier.verifyAccessToken(await as.sign({}, { typ: 'application/at+jwt' }));
    await verifier.verifyAccessToken(await as.sign({}, { typ: 'AT+JWT' }));
    const idToken = await as.sign({ aud: NOTES, nonce: 'n', auth_time: now() }, { typ: 'JWT' });
    assert.equal(await codeOf(verifier.verifyAccessToken(idToken)), 'ERR_TOKEN_TYPE');
    assert.equal(await codeOf(verifier.verifyAccessToken(await as.sign({}, { typ: undefined }))), 'ERR_TOKEN_TYPE');
  });

  it('wrong issuer and wrong audience are refused', async () => {
    assert.equal(await codeOf(verifier.verifyAccessToken(await as.sign({ iss: 'https://evil.example.com' }))), 'ERR_TOKEN_ISSUER');
    assert.equal(await codeOf(verifier.verifyAccessToken(await as.sign({ iss: `${as.issuer}/` }))), 'ERR_TOKEN_ISSUER');
    assert.equal(await codeOf(verifier.verifyAccessToken(await as.sign({ aud: 'https://notes.example.com/mcp2' }))), 'ERR_TOKEN_AUDIENCE');
    assert.equal(await codeOf(verifier.verifyAccessToken(await as.sign({ aud: undefined }))), 'ERR_TOKEN_AUDIENCE');
    assert.equal(await codeOf(verifier.verifyAccessToken(await as.sign({ aud: ['https://a.example.com', 'https://b.example.com'] }))), 'ERR_TOKEN_AUDIENCE');
  });

  it('exp: required, checked with the tolerance; expired is 401 invalid_token', async () => {
    const err = await verifier.verifyAccessToken(await as.sign({ iat: now() - 700, exp: now() - 60 })).catch((e: VerifierError) => e);
    assert.ok(err instanceof VerifierError);
    assert.equal(err.code, 'ERR_TOKEN_EXPIRED');
    assert.equal(err.status, 401);
    assert.equal(err.oauthError, 'invalid_token');
    await verifier.verifyAccessToken(await as.sign({ exp: now() - 2 })); // within the 5 s tolerance
    assert.equal(await codeOf(verifier.verifyAccessToken(await as.sign({ exp: undefined }))), 'ERR_TOKEN_INVALID');
    const strict = createVerifier({ issuer: as.issuer, resource: NOTES, clockTolerance: 0 });
    assert.equal(await codeOf(strict.verifyAccessToken(await as.sign({ exp: now() - 2 }))), 'ERR_TOKEN_EXPIRED');
  });

  it('the verified-token cache: a repeated token is not checked again, yet still expires; cache: false checks every time', async () => {
    const strict = createVerifier({ issuer: as.issuer, resource: NOTES, clockTolerance: 0 });
    const token = await as.sign({ exp: now() + 2 });
    const first = await strict.verifyAccessToken(token);
    const jwksFetches = as.hits.get('/jwks');
    const again = await strict.verifyAccessToken(token);
    assert.deepEqual(again, first, 'the same AuthInfo');
    assert.notEqual(again, first, 'a fresh object each time');
    assert.ok(Object.isFrozen(again.extra?.claims), 'shared claims cannot be changed by a caller');
    // a token signed by a key the verifier does not know fails, cached or not: the cache is keyed by the whole token
    const [h, p] = token.split('.');
    assert.equal(await codeOf(strict.verifyAccessToken(`${h}.${p}.${'A'.repeat(86)}`)), 'ERR_TOKEN_INVALID');
    assert.equal(as.hits.get('/jwks'), jwksFetches);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(await codeOf(strict.verifyAccessToken(token)), 'ERR_TOKEN_EXPIRED', 'a cached token expires all the same');
    assert.throws(() => createVerifier({ issuer: as.issuer, resource: NOTES, cache: 'yes' as never }), /"cache"/);
    assert.throws(() => createVerifier({ issuer: as.issuer, resource: NOTES, cache: { maxEntries: 0 } }), /"cache.maxEntries"/);
    assert.throws(() => createVerifier({ issuer: as.issuer, resource: NOTES, cache: { maxAge: 0 } }), /"cache.maxAge"/);
    await strict.close();
  });

  it('VerifiedTokens: forgets the oldest past maxEntries and anything older than maxAge', async () => {
    const tokens = new VerifiedTokens({ maxEntries: 2, maxAge: 1, clockTolerance: 0 });
    const claims = (jti: string) => ({ jti, exp: now() + 600 });
    tokens.set('a.b.c', claims('1'));
    tokens.set('d.e.f', claims('2'));
    tokens.set('g.h.i', claims('3'));
    assert.equal(tokens.get('a.b.c'), undefined);
    assert.equal(tokens.get('g.h.i')?.jti, '3');
    await new Promise((resolve) => setTimeout(resolve, 2100));
    assert.equal(tokens.get('g.h.i'), undefined, 'maxAge: a withdrawn key is not trusted longer than this');
  });

  it('nbf is honoured with the tolerance', async () => {
    assert.equal(await codeOf(verifier.verifyAccessToken(await as.sign({ nbf: now() + 60 }))), 'ERR_TOKEN_INVALID');
    await verifier.verifyAccessToken(await as.sign({ nbf: now() + 2 }));
  });

  it('a DPoP-bound token (cnf.jkt) presented as Bearer is refused', async () => {
    const err = await verifier.verifyAccessToken(await as.sign({ cnf: { jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' } })).catch((e: VerifierError) => e);
    assert.ok(err instanceof VerifierError);
    assert.equal(err.code, 'ERR_TOKEN_DPOP_BOUND');
    assert.equal(err.status, 401);
  });

  it('the algorithm allow-list applies; none and HS* cannot be allowed', async () => {
    const rsOnly = createVerifier({ issuer: as.issuer, resource: NOTES, algorithms: ['RS256'] });
    assert.equal(await codeOf(rsOnly.verifyAccessToken(await as.sign())), 'ERR_TOKEN_INVALID');
    for (const algorithms of [['none'], ['HS256'], ['ES256', 'hs512'], []]) {
      assert.throws(() => createVerifier({ issuer: as.issuer, resource: NOTES, algorithms }), TypeError);
    }
  });

  it('bad configuration is a TypeError naming the field', () => {
    assert.throws(() => createVerifier({ issuer: 'http://auth.example.com', resource: NOTES }), /"issuer" must use https/);
    assert.throws(() => createVerifier({ issuer: 'not a url', resource: NOTES }), /"issuer"/);
    assert.throws(() => createVerifier({ issuer: as.issuer, resource: 'https://x.example.com/mcp#frag' }), /"resource"/);
    assert.throws(() => createVerifier({ issuer: as.issuer, resource: NOTES, revocation: { onStale: 'introspect' } }), /introspection/);
    assert.throws(() => createVerifier({ issuer: as.issuer, resource: NOTES, revocation: { staleAfter: 0 } }), /staleAfter/);
  });

  it('metadata locations: RFC 8414 path insertion first, then OpenID Connect discovery', () => {
    assert.deepEqual(metadataCandidates('https://auth.example.com').map(String), [
      'https://auth.example.com/.well-known/oauth-authorization-server',
      'https://auth.example.com/.well-known/openid-configuration',
    ]);
    assert.deepEqual(metadataCandidates('https://auth.example.com/tenant/1').map(String), [
      'https://auth.example.com/.well-known/oauth-authorization-server/tenant/1',
      'https://auth.example.com/tenant/1/.well-known/openid-configuration',
      'https://auth.example.com/.well-known/openid-configuration/tenant/1',
    ]);
  });

  it('an explicit jwksUri and feedUrl skip discovery', async () => {
    const v = createVerifier({ issuer: as.issuer, resource: NOTES, jwksUri: as.url('/jwks'), metadataUrl: as.url('/nowhere'), revocation: { feedUrl: as.url('/revocations') } });
    assert.equal((await v.verifyAccessToken(await as.sign())).clientId, 'test-client');
    await v.close();
  });
});

describe('verifier: introspection of opaque tokens', () => {
  let as: FakeAs;
  let verifier: Verifier;
  before(async () => {
    as = await startFakeAs();
    verifier = createVerifier({ issuer: as.issuer, resource: NOTES, introspection: { clientId: 'notes server', clientSecret: 's3cr:t', cacheTtl: 30 } });
  });
  after(() => as.stop());

  const active = (extra: Record<string, unknown> = {}) => ({
    active: true,
    iss: as.issuer,
    aud: NOTES,
    client_id: 'opaque-client',
    scope: 'notes:read notes:write',
    sub: 'user-2',
    jti: 'jti-opaque',
    exp: now() + 600,
    ...extra,
  });

  it('an active answer becomes AuthInfo; HTTP Basic with form-encoded credentials; cached', async () => {
    as.introspection.set('opaque-1', active());
    const info = await verifier.verifyAccessToken('opaque-1');
    assert.equal(info.clientId, 'opaque-client');
    assert.deepEqual(info.scopes, ['notes:read', 'notes:write']);
    assert.equal(info.extra?.subject, 'user-2');
    assert.equal(info.resource?.href, NOTES);
    assert.equal(as.introspectionCalls.at(-1), `Basic ${Buffer.from('notes+server:s3cr%3At').toString('base64')}`);
    const calls = as.introspectionCalls.length;
    await verifier.verifyAccessToken('opaque-1');
    assert.equal(as.introspectionCalls.length, calls, 'second verification from the cache');
  });

  it('inactive, other audience, expired, DPoP-bound are refused', async () => {
    assert.equal(await codeOf(verifier.verifyAccessToken('unknown-opaque')), 'ERR_TOKEN_INVALID');
    as.introspection.set('opaque-aud', active({ aud: 'https://calendar.example.com/mcp' }));
    assert.equal(await codeOf(verifier.verifyAccessToken('opaque-aud')), 'ERR_TOKEN_AUDIENCE');
    as.introspection.set('opaque-noaud', active({ aud: undefined }));
    assert.equal(await codeOf(verifier.verifyAccessToken('opaque-noaud')), 'ERR_TOKEN_AUDIENCE');
    as.introspection.set('opaque-exp', active({ exp: now() - 60 }));
    assert.equal(await codeOf(verifier.verifyAccessToken('opaque-exp')), 'ERR_TOKEN_EXPIRED');
    as.introspection.set('opaque-dpop', active({ token_type: 'DPoP', cnf: { jkt: 'x' } }));
    assert.equal(await codeOf(verifier.verifyAccessToken('opaque-dpop')), 'ERR_TOKEN_DPOP_BOUND');
    as.introspection.set('opaque-iss', active({ iss: 'https://evil.example.com' }));
    assert.equal(await codeOf(verifier.verifyAccessToken('opaque-iss')), 'ERR_TOKEN_ISSUER');
  });

  it('the cache never outlives the token exp', async () => {
    as.introspection.set('opaque-short', active({ exp: now() + 1 }));
    await verifier.verifyAccessToken('opaque-short');
    const calls = as.introspectionCalls.length;
    await new Promise((r) => setTimeout(r, 2100));
    await verifier.verifyAccessToken('opaque-short').catch(() => undefined);
    assert.equal(as.introspectionCalls.length, calls + 1, 'asked again once exp passed');
  });

  it('an unreachable introspection endpoint is 503, not 401', async () => {
    const v = createVerifier({ issuer: as.issuer, resource: NOTES, introspection: { clientId: 'c', clientSecret: 's', endpoint: 'http://127.0.0.1:9/introspect' } });
    const err = await v.verifyAccessToken('opaque-1').catch((e: VerifierError) => e);
    assert.equal((err as VerifierError).code, 'ERR_AUTHZ_UNAVAILABLE');
    assert.equal((err as VerifierError).status, 503);
  });
});

function decode(token: string) {
  const [h, p] = token.split('.') as [string, string];
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>,
  };
}
