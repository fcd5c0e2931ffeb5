/**
 * Refresh, revocation (RFC 7009) and introspection (RFC 7662): a client may introspect only
 * tokens issued to it, or issued for an MCP server it acts as.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { SECRET } from '../helpers/fixtures.js';
import { userTokens } from '../helpers/flows.js';
import { basicClient, client } from '../helpers/rp.js';
import type { TestServer } from '../helpers/server.js';

const basic = (id: string) => `Basic ${Buffer.from(`${id}:${SECRET}`).toString('base64')}`;

async function introspect(t: TestServer, asClient: string, token: string) {
  const res = await fetch(t.url('/token/introspection'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(asClient) },
    body: new URLSearchParams({ token }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

for (const kind of STORE_KINDS) {
  describe(`refresh, revocation and introspection (${kind})`, () => {
    const s = serverFixture(kind);

    it('a confidential client keeps its refresh token working and may introspect it', async () => {
      const { config, tokens } = await userTokens(s.t, 'confidential-web');
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
      assert.ok(refreshed.access_token);
      const own = await introspect(s.t, 'confidential-web', refreshed.refresh_token ?? tokens.refresh_token!);
      assert.equal(own.status, 200);
      assert.equal(own.body.active, true);
      assert.equal(own.body.client_id, 'confidential-web');
      assert.equal(typeof own.body.sub, 'string');
      assert.equal(typeof own.body.exp, 'number');
    });

    it('another client learns nothing; the MCP server it was issued for may introspect it', async () => {
      const { tokens } = await userTokens(s.t, 'confidential-web');
      const stranger = await introspect(s.t, 'nightly-report', tokens.refresh_token!);
      assert.deepEqual(stranger.body, { active: false });
      const resourceServer = await introspect(s.t, 'notes-server', tokens.refresh_token!);
      assert.equal(resourceServer.body.active, true);
    });

    it('revoking a refresh token (RFC 7009) ends it; unknown tokens answer 200 too', async () => {
      const { config, tokens } = await userTokens(s.t, 'web-app');
      const control = await userTokens(s.t, 'web-app');
      // notes-server, the MCP server both were issued for, may introspect them: before, both are active
      const server = await basicClient(s.t, 'notes-server');
      assert.equal((await client.tokenIntrospection(server, tokens.refresh_token!)).active, true, 'active before revocation');
      assert.equal((await client.tokenIntrospection(server, control.tokens.refresh_token!)).active, true, 'the control token is active');

      await client.tokenRevocation(config, tokens.refresh_token!);
      assert.equal((await client.tokenIntrospection(server, tokens.refresh_token!)).active, false, 'inactive after revocation');
      assert.equal((await client.tokenIntrospection(server, control.tokens.refresh_token!)).active, true, 'the control token is untouched');
      await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), (err: Error & { error?: string }) => err.error === 'invalid_grant');
      await client.tokenRevocation(config, 'no-such-token-value');
    });

    it('introspection and revocation need client authentication', async () => {
      for (const path of ['/token/introspection', '/token/revocation']) {
        const res = await fetch(s.t.url(path), {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token: 'x' }),
        });
        assert.ok(res.status === 400 || res.status === 401, `${path}: ${res.status}`);
        const body = (await res.json()) as { error: string };
        assert.ok(['invalid_client', 'invalid_request'].includes(body.error), body.error);
      }
    });
  });
}
