/**
 * Token forgery against an MCP server protected by the verifier, with real tokens of a real
 * mcp-authz: `alg: none`, HS256 signed with the public key, another issuer's key, tampered
 * claims, an expired token and one for another audience (both signed with the server's own
 * key, as if stolen, so only the claim checks stand in the way), a real token for another MCP
 * server, a real ID token presented as an access token, and a token of another mcp-authz.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { SignJWT, generateKeyPair, importJWK, decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import { startServer, type TestServer } from '../helpers/server.js';
import { Browser, authorize } from '../helpers/browser-driver.js';
import { CALENDAR, NOTES, PASSWORD, REDIRECT, SECRET } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { client } from '../helpers/rp.js';
import { createVerifier, VerifierError, type Verifier } from '../../src/verifier/index.js';
import { readKeySet } from '../../src/keys/signing-keys.js';

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

async function clientCredentials(t: TestServer, resource: string, scope: string): Promise<string> {
  const res = await fetch(t.url('/token'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`report-post:${SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`no token: ${JSON.stringify(body)}`);
  return body.access_token;
}

describe('token forgery is refused', () => {
  let t: TestServer;
  let other: TestServer;
  let verifier: Verifier;
  let token: string;
  let claims: JWTPayload;
  let header: Record<string, unknown>;

  /** Signs `payload` with the authorization server's own (stolen) access-token key. */
  async function signWithStolenKey(payload: JWTPayload): Promise<string> {
    const set = await readKeySet(t.server.store.settings);
    const stored = set.keys.find((k) => k.jwk.kid === header.kid)!;
    const key = await importJWK(stored.jwk as never, 'ES256');
    return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: stored.jwk.kid }).sign(key);
  }

  async function refusal(candidate: string): Promise<VerifierError> {
    const err = await verifier.verifyAccessToken(candidate).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof VerifierError, 'the forged token was accepted');
    assert.equal(err.status, 401);
    assert.equal(err.oauthError, 'invalid_token');
    return err;
  }

  before(async () => {
    [t, other] = await Promise.all([startServer({ store: 'sqlite' }), startServer({ store: 'sqlite' })]);
    verifier = createVerifier({ issuer: t.issuer, resource: NOTES });
    token = await clientCredentials(t, NOTES, 'notes:read');
    claims = decodeJwt(token);
    header = decodeProtectedHeader(token) as Record<string, unknown>;
    await verifier.verifyAccessToken(token); // the real one verifies
  });
  after(async () => {
    await verifier?.close();
    await Promise.all([t?.stop(), other?.stop()]);
  });

  test('alg: none', async () => {
    const [, payload] = token.split('.') as [string, string];
    const none = b64url(JSON.stringify({ alg: 'none', typ: 'at+jwt' }));
    await refusal(`${none}.${payload}.`);
  });

  test('HS256 signed with the public key', async () => {
    const jwks = (await (await fetch(t.url('/jwks'))).json()) as { keys: Array<Record<string, string>> };
    const [, payload] = token.split('.') as [string, string];
    for (const jwk of jwks.keys) {
      const hs = b64url(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: jwk.kid }));
      const signature = createHmac('sha256', JSON.stringify(jwk)).update(`${hs}.${payload}`).digest('base64url');
      await refusal(`${hs}.${payload}.${signature}`);
    }
  });

  test("another issuer's key (same kid)", async () => {
    const { privateKey } = await generateKeyPair('ES256');
    await refusal(await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: String(header.kid) }).sign(privateKey));
  });

  test('tampered claims (scope escalation, other subject) under the original signature', async () => {
    const [h, , signature] = token.split('.') as [string, string, string];
    for (const change of [{ scope: 'notes:read notes:write notes:delete' }, { sub: 'someone-else' }, { exp: (claims.exp ?? 0) + 86400 }]) {
      await refusal(`${h}.${b64url(JSON.stringify({ ...claims, ...change }))}.${signature}`);
    }
  });

  test('expired (signed with the real key)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const err = await refusal(await signWithStolenKey({ ...claims, iat: now - 7200, exp: now - 3600 }));
    assert.equal(err.code, 'ERR_TOKEN_EXPIRED');
  });

  test('another audience (signed with the real key, and a real token for another MCP server)', async () => {
    assert.equal((await refusal(await signWithStolenKey({ ...claims, aud: 'https://evil.example.com/mcp' }))).code, 'ERR_TOKEN_AUDIENCE');
    const calendar = await clientCredentials(t, CALENDAR, 'calendar:read');
    assert.equal((await refusal(calendar)).code, 'ERR_TOKEN_AUDIENCE');
  });

  test('an ID token presented as an access token', async () => {
    const request = await authorizationRequest(t, 'web-app', { scope: 'openid notes:read', resource: NOTES });
    const callback = await authorize(new Browser(), request.url, REDIRECT, PASSWORD);
    const tokens = await client.authorizationCodeGrant(request.config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state });
    assert.ok(tokens.id_token, 'an ID token was issued');
    await refusal(tokens.id_token);
  });

  test('a token of another mcp-authz (another issuer, its own keys)', async () => {
    await refusal(await clientCredentials(other, NOTES, 'notes:read'));
  });
});
