/**
 * The promise of the revocation feed, literally: a verifier in ANOTHER process (an MCP server),
 * created with nothing but `issuer` and `resource`, refuses — pushed on the revocation feed, within
 * PUSH_BOUND_MS (test/helpers/timing.ts; the sub-second speed is bench/revocation's) — after the request
 * returning a revoked access token (RFC 7009), every token of a revoked grant (its refresh token
 * revoked) and every token of a person who signed out of all apps, on both stores.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { NOTES, PASSWORD, REDIRECT, SECRET } from '../helpers/fixtures.js';
import { Browser, authorize, findForm } from '../helpers/browser-driver.js';
import { authorizationRequest } from '../helpers/flows.js';
import { client } from '../helpers/rp.js';
import type { TestServer } from '../helpers/server.js';
import { PUSH_BOUND_MS } from '../helpers/timing.js';

const basic = `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}`;
const form = { 'content-type': 'application/x-www-form-urlencoded' };

/** alice signs in with `browser` and allows web-app; its tokens. */
async function aliceTokens(t: TestServer, browser: Browser) {
  const { config, verifier, state, url } = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES });
  const callback = await authorize(browser, url, REDIRECT, PASSWORD);
  return client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
}

for (const kind of STORE_KINDS) {
  describe(`revocation reaches a verifier with default options in another process (${kind})`, () => {
    const s = serverFixture(kind);
    let child: ChildProcess;
    let checkUrl: string;

    before(async () => {
      child = spawn(process.execPath, ['dist/test/revocation/verifier-process.js', s.t.issuer, NOTES], { stdio: ['ignore', 'pipe', 'inherit'] });
      const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
      checkUrl = chunk.toString().trim();
    });
    after(async () => {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    });

    const check = (token: string) => fetch(checkUrl, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);

    /** Runs `revoke` (which returns once the authorization server answered) and measures until every token is refused. */
    async function refusedAfter(tokens: string[], revoke: () => Promise<void>): Promise<number> {
      for (const token of tokens) assert.equal(await check(token), 200, 'accepted before revocation');
      await revoke();
      const returned = Date.now();
      for (const token of tokens) {
        let status = await check(token);
        while (status === 200 && Date.now() - returned < PUSH_BOUND_MS) {
          await new Promise((r) => setTimeout(r, 10));
          status = await check(token);
        }
        assert.equal(status, 401, 'refused');
      }
      return Date.now() - returned;
    }

    it('a token revoked with RFC 7009', async () => {
      const issued = await fetch(s.t.url('/token'), {
        method: 'POST',
        headers: { ...form, authorization: basic },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
      });
      const token = ((await issued.json()) as { access_token: string }).access_token;
      const elapsed = await refusedAfter([token], async () => {
        const revoked = await fetch(s.t.url('/token/revocation'), { method: 'POST', headers: { ...form, authorization: basic }, body: new URLSearchParams({ token }) });
        assert.equal(revoked.status, 200);
      });
      assert.ok(elapsed < PUSH_BOUND_MS, `refused after ${elapsed} ms`);
    });

    it("a revoked grant: the refresh token revoked, the grant's access token is refused", async () => {
      const tokens = await aliceTokens(s.t, new Browser());
      assert.ok(tokens.refresh_token);
      const elapsed = await refusedAfter([tokens.access_token], async () => {
        const revoked = await fetch(s.t.url('/token/revocation'), {
          method: 'POST',
          headers: form,
          body: new URLSearchParams({ client_id: 'web-app', token: tokens.refresh_token!, token_type_hint: 'refresh_token' }),
        });
        assert.equal(revoked.status, 200);
      });
      assert.ok(elapsed < PUSH_BOUND_MS, `refused after ${elapsed} ms`);
    });

    it("a person who signed out of all apps: each of their tokens is refused", async () => {
      const browser = new Browser();
      const first = await aliceTokens(s.t, browser);
      const second = await aliceTokens(s.t, browser);
      const elapsed = await refusedAfter([first.access_token, second.access_token], async () => {
        const apps = await browser.go(s.t.url('/account/apps'));
        const done = await browser.submit(findForm(apps, '/account/apps/revoke-all'));
        assert.equal(done.status, 200);
      });
      assert.ok(elapsed < PUSH_BOUND_MS, `refused after ${elapsed} ms`);
    });
  });
}
