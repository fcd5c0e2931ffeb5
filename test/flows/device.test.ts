/**
 * Device authorization grant (RFC 8628) end to end: device endpoint, the user-code page
 * (forgiving of case, spaces and dashes), the confirmation page naming client, MCP server
 * and scopes, verification_uri_complete, and the polling errors exactly as the RFC says.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, findForm, type Page } from '../helpers/browser-driver.js';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { NOTES, PASSWORD } from '../helpers/fixtures.js';
import { client, jwt, publicClient } from '../helpers/rp.js';
import type { TestServer } from '../helpers/server.js';
import { pollDevice, startDevice } from '../helpers/flows.js';

/** A person enters the code, confirms, signs in and consents (or refuses at a step). */
async function approve(t: TestServer, userCodeAsTyped: string, options: { cancelAtConfirm?: boolean; denyConsent?: boolean } = {}): Promise<Page> {
  const browser = new Browser();
  let page = await browser.go(t.url('/device'));
  page = await browser.submit(findForm(page, '/device'), { user_code: userCodeAsTyped });
  assert.equal(page.status, 200, page.html.slice(0, 500));
  const confirm = findForm(page, '/device');
  if (options.cancelAtConfirm) return browser.submit(confirm, {}, { name: 'abort', value: 'yes' });
  page = await browser.submit(confirm, {}, { name: 'confirm', value: 'yes' });
  page = await browser.submit(findForm(page, '/login'), { username: 'alice', password: PASSWORD });
  if (options.denyConsent) return browser.submit(findForm(page, '/abort'));
  return browser.submit(findForm(page, '/confirm'));
}

for (const kind of STORE_KINDS) {
  describe(`device authorization grant (${kind})`, () => {
    const s = serverFixture(kind, { config: { deviceFlow: { interval: 1 } } });

    it('answers the device endpoint as RFC 8628 §3.2 says', async () => {
      const da = await startDevice(s.t);
      assert.match(da.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
      assert.equal(da.verification_uri, s.t.url('/device'));
      assert.equal(da.verification_uri_complete, `${s.t.url('/device')}?user_code=${encodeURIComponent(da.user_code)}`);
      assert.equal(da.interval, 1);
      assert.ok(da.expires_in > 0);
    });

    it('pending, then slow_down when polling too fast, then tokens after approval', async () => {
      const da = await startDevice(s.t);
      const first = await pollDevice(s.t, da.device_code);
      assert.equal(first.status, 400);
      assert.equal(first.body.error, 'authorization_pending');
      const tooFast = await pollDevice(s.t, da.device_code);
      assert.equal(tooFast.body.error, 'slow_down');

      // forgiving input: lower case, spaces instead of the dash
      const typed = da.user_code.toLowerCase().replace('-', ' ');
      const done = await approve(s.t, ` ${typed} `);
      assert.equal(done.status, 200);
      assert.match(done.html, /Living-room TV/);

      await new Promise((r) => setTimeout(r, 6100)); // interval grew by 5 s after slow_down
      const ok = await pollDevice(s.t, da.device_code);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const at = jwt(ok.body.access_token!);
      assert.equal(at.payload.aud, NOTES);
      assert.equal(at.payload.client_id, 'tv-app');
      assert.equal(at.payload.scope, 'notes:read notes:write');
      // the device code is single use
      const again = await pollDevice(s.t, da.device_code);
      assert.equal(again.body.error, 'invalid_grant');
    });

    it('shows who asks for which MCP server and scopes before the person confirms', async () => {
      const da = await startDevice(s.t);
      const browser = new Browser();
      let page = await browser.go(s.t.url('/device'));
      page = await browser.submit(findForm(page, '/device'), { user_code: da.user_code.replace('-', '') });
      assert.match(page.html, /Living-room TV/);
      assert.match(page.html, /Notes/);
      assert.ok(page.html.includes(NOTES));
      assert.match(page.html, /Read your notes/);
      assert.match(page.html, /Create and edit notes/);
      assert.ok(page.html.includes(da.user_code));
    });

    it('verification_uri_complete prefills the code and needs a click (no self-submitting page)', async () => {
      const da = await startDevice(s.t);
      const browser = new Browser();
      const page = await browser.go(da.verification_uri_complete);
      assert.equal(page.status, 200);
      assert.ok(!/<script>/.test(page.html), 'no inline script');
      const form = findForm(page, '/device');
      assert.equal(form.fields.find((f) => f.name === 'user_code')?.value, da.user_code);
      const confirm = await browser.submit(form);
      assert.match(confirm.html, /Living-room TV/);
    });

    it('access_denied when the person cancels at confirmation or refuses consent', async () => {
      for (const option of [{ cancelAtConfirm: true }, { denyConsent: true }]) {
        const da = await startDevice(s.t);
        const page = await approve(s.t, da.user_code, option);
        assert.match(page.html, /not connected/, 'the person is told the device was not connected');
        const res = await pollDevice(s.t, da.device_code);
        assert.equal(res.body.error, 'access_denied', JSON.stringify(option));
      }
    });

    it('a device naming no scope gets the server’s defaultScopes after consent', async () => {
      const da = await startDevice(s.t, { resource: NOTES });
      await approve(s.t, da.user_code);
      await new Promise((r) => setTimeout(r, 1100));
      const ok = await pollDevice(s.t, da.device_code);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(jwt(ok.body.access_token!).payload.scope, 'notes:read');
    });

    it('refuses a wrong user code on the page', async () => {
      const browser = new Browser();
      const page = await browser.go(s.t.url('/device'));
      const after = await browser.submit(findForm(page, '/device'), { user_code: 'BCDF-GHJK' });
      assert.equal(after.status, 400);
      assert.match(after.html, /not valid/);
    });

    it('works with openid-client', async () => {
      const rp = await publicClient(s.t, 'tv-app');
      const da = await client.initiateDeviceAuthorization(rp, { scope: 'notes:read', resource: NOTES });
      const polling = client.pollDeviceAuthorizationGrant(rp, da, { resource: NOTES });
      await approve(s.t, da.user_code);
      const tokens = await polling;
      assert.equal(jwt(tokens.access_token).payload.aud, NOTES);
      assert.ok(tokens.refresh_token);
    });
  });
}

describe('device authorization grant: expiry', () => {
  const s = serverFixture('sqlite', { config: { ttl: { deviceCode: 1 }, deviceFlow: { interval: 1 } } });

  it('expired_token once the device code expired', async () => {
    const da = await startDevice(s.t);
    await new Promise((r) => setTimeout(r, 2100));
    const res = await pollDevice(s.t, da.device_code);
    assert.equal(res.body.error, 'expired_token');
  });
});
