/**
 * The second-factor step on both stores (SQLite, and Redis as replicas share it): the pending
 * step, the enrolment and the used time step live in the store; a refresh keeps the `amr` and
 * `acr` of the sign-in in the new access token; the device flow asks for the factor too.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { ACR_MFA } from '../../src/second-factors/policy.js';
import { client, jwt } from '../helpers/rp.js';
import { pollDevice, startDevice } from '../helpers/flows.js';
import { Browser, codeOf, consentAndRedeem, enrolTotp, findForm, isSecondFactorPage, PASSWORD, REDIRECT, signIn } from './support.js';

for (const kind of STORE_KINDS) {
  describe(`second factors on ${kind}`, { timeout: 120_000 }, () => {
    const s = serverFixture(kind, { users: { alice: [] } });
    // (the tests run in order: the second one enrols alice again, from the store)

    test('set up on the account page, asked at the next sign-in, a used code refused, the amr kept through a refresh', async () => {
      const browser = new Browser();
      const first = await signIn(s.t, browser, { clientId: 'confidential-web' });
      await consentAndRedeem(browser, first.page, first.request);
      let page = await browser.go(s.t.url('/account/security/totp'));
      const secret = /<code class="totp-secret">([A-Z2-7]+)<\/code>/.exec(page.html)?.[1];
      assert.ok(secret);
      const enrolmentCode = await codeOf(secret);
      page = await browser.submit(findForm(page, '/account/security/totp'), { code: enrolmentCode });
      assert.equal([...page.html.matchAll(/<li><code>/g)].length, 10);

      const next = new Browser();
      const { request, page: step } = await signIn(s.t, next, { clientId: 'confidential-web' });
      assert.ok(isSecondFactorPage(step));
      // the very code typed at enrolment (not a fresh one: a 30 s step may have begun since)
      const used = await next.submit(findForm(step, '/second-factor'), { code: enrolmentCode }, undefined, REDIRECT);
      assert.equal(used.status, 401, 'the enrolment code is used up');
      const consent = await next.submit(findForm(used, '/second-factor'), { code: await codeOf(secret, 1) }, undefined, REDIRECT);
      const { tokens, access } = await consentAndRedeem(next, consent, request);
      assert.deepEqual(access.amr, ['pwd', 'otp', 'mfa']);
      assert.ok(tokens.refresh_token, 'a refresh token');
      const refreshed = await client.refreshTokenGrant(request.config, tokens.refresh_token);
      const after = jwt(refreshed.access_token).payload as Record<string, unknown>;
      assert.deepEqual(after.amr, ['pwd', 'otp', 'mfa'], 'the refreshed access token says how the person signed in');
      assert.equal(after.acr, ACR_MFA);
      assert.equal(after.auth_time, access.auth_time);
    });

    test('the device flow: the second factor after the password, the device token says so', async () => {
      const { secret } = await enrolTotp(s.t, 'alice');
      const device = await startDevice(s.t);
      const browser = new Browser();
      let page = await browser.go(s.t.url('/device'));
      page = await browser.submit(findForm(page, '/device'), { user_code: device.user_code });
      page = await browser.submit(findForm(page, '/device'), {}, { name: 'confirm', value: 'yes' });
      page = await browser.submit(findForm(page, '/login'), { username: 'alice', password: PASSWORD });
      assert.ok(isSecondFactorPage(page), 'the code is asked');
      page = await browser.submit(findForm(page, '/second-factor'), { code: await codeOf(secret) });
      page = await browser.submit(findForm(page, '/confirm'));
      assert.equal(page.status, 200);
      const polled = await pollDevice(s.t, device.device_code);
      assert.equal(polled.status, 200, JSON.stringify(polled.body));
      const claims = jwt(polled.body.access_token!).payload as Record<string, unknown>;
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
      assert.equal(claims.acr, ACR_MFA);
    });
  });
}
