/**
 * Client credentials for services: client_secret_basic, client_secret_post and
 * private_key_jwt (aud = issuer or token endpoint; a replayed jti refused), held to the
 * client's configured scopes and MCP servers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT, importJWK } from 'jose';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { fixtureConfig, NOTES, CALENDAR, SECRET } from '../helpers/fixtures.js';
import { basicClient, client, jwt, postClient } from '../helpers/rp.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicJwk = { ...publicKey.export({ format: 'jwk' }), kty: 'EC', kid: 'svc-key-1', alg: 'ES256', use: 'sig' };
const privateJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'svc-key-1', alg: 'ES256' };

const fixture = fixtureConfig();
const config = {
  ...fixture,
  clients: [
    ...fixture.clients!,
    { client_id: 'jwt-service', jwks: { keys: [publicJwk] }, grant_types: ['client_credentials' as const], scope: 'notes:read notes:write' },
  ],
};

const form = (body: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  body: new URLSearchParams(body),
});

for (const kind of STORE_KINDS) {
  describe(`client credentials (${kind})`, () => {
    const s = serverFixture(kind, { config });

    async function assertion(aud: string, jti: string = randomUUID()) {
      return new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'svc-key-1' })
        .setIssuer('jwt-service')
        .setSubject('jwt-service')
        .setAudience(aud)
        .setJti(jti)
        .setIssuedAt()
        .setExpirationTime('2m')
        .sign(await importJWK(privateJwk, 'ES256'));
    }

    async function tokenWithAssertion(aud: string, jti?: string) {
      return fetch(
        s.t.url('/token'),
        form({
          grant_type: 'client_credentials',
          resource: NOTES,
          scope: 'notes:read',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await assertion(aud, jti),
        }),
      );
    }

    it('client_secret_basic: a JWT for the configured server with the client scopes only', async () => {
      const rp = await basicClient(s.t, 'nightly-report');
      const tokens = await client.clientCredentialsGrant(rp, { scope: 'notes:read notes:write', resource: NOTES });
      const { header, payload } = jwt(tokens.access_token);
      assert.equal(header.typ, 'at+jwt');
      assert.equal(payload.aud, NOTES);
      assert.equal(payload.client_id, 'nightly-report');
      assert.equal(payload.scope, 'notes:read', 'notes:write is outside the client scope');
      assert.equal(payload.sub, 'nightly-report');
      assert.equal(tokens.refresh_token, undefined);
    });

    it('without resource, a client with one MCP server gets a token for it', async () => {
      const rp = await basicClient(s.t, 'nightly-report');
      const tokens = await client.clientCredentialsGrant(rp, { scope: 'notes:read' });
      assert.equal(jwt(tokens.access_token).payload.aud, NOTES);
      const viaAlias = await client.clientCredentialsGrant(rp, { scope: 'notes:read', resource: 'HTTPS://notes.example.com/' });
      assert.equal(jwt(viaAlias.access_token).payload.aud, NOTES);
    });

    it('client_secret_post works', async () => {
      const rp = await postClient(s.t, 'report-post');
      const tokens = await client.clientCredentialsGrant(rp, { scope: 'calendar:read', resource: CALENDAR });
      assert.equal(jwt(tokens.access_token).payload.aud, CALENDAR);
      assert.equal(jwt(tokens.access_token).payload.scope, 'calendar:read');
    });

    it('private_key_jwt with aud = issuer and aud = token endpoint', async () => {
      for (const aud of [s.t.issuer, s.t.url('/token')]) {
        const res = await tokenWithAssertion(aud);
        assert.equal(res.status, 200, `aud ${aud}: ${await res.clone().text()}`);
        const body = (await res.json()) as { access_token: string };
        assert.equal(jwt(body.access_token).payload.client_id, 'jwt-service');
        assert.equal(jwt(body.access_token).payload.aud, NOTES, 'for the MCP server named by resource');
      }
    });

    it('private_key_jwt: a replayed assertion (same jti) is refused', async () => {
      const jti = randomUUID();
      assert.equal((await tokenWithAssertion(s.t.issuer, jti)).status, 200);
      const replay = await tokenWithAssertion(s.t.issuer, jti);
      assert.equal(replay.status, 401);
      assert.equal(((await replay.json()) as { error: string }).error, 'invalid_client');
    });

    it('private_key_jwt: another audience or a foreign key is refused', async () => {
      const res = await tokenWithAssertion('https://elsewhere.example.com');
      assert.equal(res.status, 401);
      const { privateKey: other } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const forged = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'svc-key-1' })
        .setIssuer('jwt-service')
        .setSubject('jwt-service')
        .setAudience(s.t.issuer)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime('2m')
        .sign(other);
      const res2 = await fetch(
        s.t.url('/token'),
        form({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: forged }),
      );
      assert.equal(res2.status, 401);
    });

    it('a wrong secret is invalid_client (401), with no detail', async () => {
      const res = await fetch(
        s.t.url('/token'),
        form({ grant_type: 'client_credentials', resource: NOTES }, { authorization: `Basic ${Buffer.from('nightly-report:wrong-secret-value').toString('base64')}` }),
      );
      assert.equal(res.status, 401);
      const body = (await res.json()) as { error: string; error_description?: string };
      assert.equal(body.error, 'invalid_client');
      assert.ok(!JSON.stringify(body).includes('wrong-secret-value'));
    });

    it('invalid_target for an unknown server and for one the client may not use', async () => {
      const rp = await basicClient(s.t, 'nightly-report');
      for (const resource of ['https://unknown.example.com/mcp', CALENDAR, `${NOTES}#x`, NOTES.replace('https://', 'https://alice@')]) {
        await assert.rejects(client.clientCredentialsGrant(rp, { scope: 'notes:read', resource }), (err: Error & { error?: string }) => err.error === 'invalid_target');
      }
    });

    it('token responses are not cacheable, errors included; an error is a JSON {error, error_description}', async () => {
      const basic = { authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` };
      const res = await fetch(s.t.url('/token'), form({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }, basic));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      // an unknown code (400) and a wrong secret (401)
      for (const [body, headers, status, error] of [
        [
          { grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: 'http://127.0.0.1:9/callback', code_verifier: 'v'.repeat(43) },
          { authorization: `Basic ${Buffer.from(`confidential-web:${SECRET}`).toString('base64')}` },
          400,
          'invalid_grant',
        ],
        [{ grant_type: 'client_credentials', resource: NOTES }, { authorization: `Basic ${Buffer.from('nightly-report:wrong-secret-value').toString('base64')}` }, 401, 'invalid_client'],
      ] as const) {
        const refused = await fetch(s.t.url('/token'), form(body, headers));
        assert.equal(refused.status, status, error);
        assert.equal(refused.headers.get('cache-control'), 'no-store', error);
        assert.match(refused.headers.get('content-type') ?? '', /^application\/json\b/, error);
        const json = (await refused.json()) as Record<string, unknown>;
        assert.equal(json.error, error);
        assert.equal(typeof json.error_description, 'string', error);
      }
    });

    it('an access token lives as long as its MCP server’s accessTokenTtl: 1 h when none is set', async () => {
      // Notes sets accessTokenTtl: 600 (test/helpers/fixtures.ts); Calendar sets none
      const notes = jwt(await client.clientCredentialsGrant(await basicClient(s.t, 'nightly-report'), { scope: 'notes:read', resource: NOTES }).then((t) => t.access_token)).payload;
      assert.equal(Number(notes.exp) - Number(notes.iat), 600);
      const calendar = jwt(await client.clientCredentialsGrant(await postClient(s.t, 'report-post'), { scope: 'calendar:read', resource: CALENDAR }).then((t) => t.access_token)).payload;
      assert.equal(Number(calendar.exp) - Number(calendar.iat), 3600);
    });
  });
}
