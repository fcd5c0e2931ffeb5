/**
 * Step-up before a dangerous scope: a person whose session has only the password (they enrolled
 * a factor after signing in) is asked for the second factor when they tick a dangerous scope on
 * the consent page; without it the scope is not granted, with it the tokens carry it and say
 * `otp`/`mfa`. `dangerousScopes: always` makes a person without a factor enrol first.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { ACR_MFA } from '../../src/second-factors/policy.js';
import { authorizationRequest } from '../helpers/flows.js';
import { Browser, codeOf, consentAndRedeem, enrolTotp, findForm, isSecondFactorPage, NOTES, REDIRECT, redeem, signIn, wrongCodeOf } from './support.js';

const READ_AND_DELETE = ['0:notes:read', '0:notes:delete'];

describe('step-up for dangerous scopes', { timeout: 120_000 }, () => {
  let t: TestServer;
  let strict: TestServer;
  before(async () => {
    [t, strict] = await Promise.all([
      startServer({ store: 'sqlite', users: { hank: [], ivy: [] } }),
      startServer({ store: 'sqlite', users: { jane: [] }, config: { secondFactor: { dangerousScopes: 'always' } } as never }),
    ]);
  });
  after(async () => {
    await Promise.all([t?.stop(), strict?.stop()]);
  });

  /** In a browser already signed in: a new authorization for read and delete, to its consent page. */
  async function consentPage(server: TestServer, browser: Browser) {
    const request = await authorizationRequest(server, 'web-app', { scope: 'openid notes:read notes:delete', resource: NOTES });
    const page = await browser.go(request.url, {}, REDIRECT);
    assert.ok(page.forms.some((f) => f.action.endsWith('/confirm')), `the consent page: ${page.html.slice(0, 200)}`);
    return { request, page };
  }

  test('enrolled after signing in: ticking a dangerous scope asks for the code; without it nothing dangerous is granted, with it the tokens carry it and mfa', async () => {
    const browser = new Browser();
    const first = await signIn(t, browser, { username: 'hank' });
    const { id } = await consentAndRedeem(browser, first.page, first.request);
    assert.deepEqual(id?.amr, ['pwd'], 'the session has the password only');
    const { secret } = await enrolTotp(t, 'hank');

    // not ticked: no step-up, no dangerous scope
    let { request, page } = await consentPage(t, browser);
    let done = await browser.submit(findForm(page, '/confirm'), { scope: ['0:notes:read'] }, undefined, REDIRECT);
    assert.equal(String((await redeem(done, request)).access.scope), 'notes:read', 'no step-up without the dangerous scope');

    // ticked: the code is asked; a wrong code, then Cancel: refused, nothing dangerous granted
    ({ request, page } = await consentPage(t, browser));
    let step = await browser.submit(findForm(page, '/confirm'), { scope: READ_AND_DELETE }, undefined, REDIRECT);
    assert.ok(isSecondFactorPage(step), 'asked for the second factor');
    assert.match(step.html, /sensitive permission/);
    const wrong = await browser.submit(findForm(step, '/second-factor'), { code: await wrongCodeOf(secret) }, undefined, REDIRECT);
    assert.equal(wrong.status, 401);
    const cancelled = await browser.submit(findForm(wrong, '/abort'), {}, undefined, REDIRECT);
    assert.equal(new URL(cancelled.url).searchParams.get('error'), 'access_denied');
    const hankId = (await t.server.store.accounts.findByUsername('hank'))!.id;
    for (const record of await t.server.store.grants.list({ accountId: hankId })) {
      const grant = await t.server.holder.provider.Grant.find(record.grantId);
      assert.ok(!grant?.getResourceScope(NOTES).includes('notes:delete'), 'no grant holds notes:delete');
    }

    // ticked, then declined: the consent goes on without the dangerous scope
    ({ request, page } = await consentPage(t, browser));
    step = await browser.submit(findForm(page, '/confirm'), { scope: READ_AND_DELETE }, undefined, REDIRECT);
    done = await browser.submit(findForm(step, '/second-factor/skip'), {}, undefined, REDIRECT);
    assert.equal(String((await redeem(done, request)).access.scope), 'notes:read', 'declined: only the safe scope');

    // ticked, and the code given: granted, and the session now has the second factor
    ({ request, page } = await consentPage(t, browser));
    step = await browser.submit(findForm(page, '/confirm'), { scope: READ_AND_DELETE }, undefined, REDIRECT);
    assert.ok(isSecondFactorPage(step));
    done = await browser.submit(findForm(step, '/second-factor'), { code: await codeOf(secret) }, undefined, REDIRECT);
    const tokens = await redeem(done, request);
    assert.equal(String(tokens.access.scope), 'notes:read notes:delete');
    assert.deepEqual(tokens.id?.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(tokens.id?.acr, ACR_MFA);
    assert.deepEqual(tokens.access.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(tokens.access.acr, ACR_MFA);

    // the session has it now: the next dangerous tick is not asked again
    ({ request, page } = await consentPage(t, browser));
    done = await browser.submit(findForm(page, '/confirm'), { scope: READ_AND_DELETE }, undefined, REDIRECT);
    assert.equal(String((await redeem(done, request)).access.scope), 'notes:read notes:delete');
  });

  test('if-enrolled (the default): a person without a factor is not asked', async () => {
    const browser = new Browser();
    const first = await signIn(t, browser, { username: 'ivy', scope: 'openid notes:read notes:delete' });
    const done = await browser.submit(findForm(first.page, '/confirm'), { scope: READ_AND_DELETE }, undefined, REDIRECT);
    assert.equal(String((await redeem(done, first.request)).access.scope), 'notes:read notes:delete');
  });

  test('always: a person without a factor enrols before the dangerous scope is granted', async () => {
    const browser = new Browser();
    const first = await signIn(strict, browser, { username: 'jane', scope: 'openid notes:read notes:delete' });
    const step = await browser.submit(findForm(first.page, '/confirm'), { scope: READ_AND_DELETE }, undefined, REDIRECT);
    assert.ok(isSecondFactorPage(step));
    const secret = /<code class="totp-secret">([A-Z2-7]+)<\/code>/.exec(step.html)?.[1];
    assert.ok(secret, 'enrolment: the secret as text');
    const codes = await browser.submit(findForm(step, '/second-factor'), { code: await codeOf(secret) }, undefined, REDIRECT);
    const done = await browser.submit(findForm(codes, '/second-factor/continue'), {}, undefined, REDIRECT);
    const tokens = await redeem(done, first.request);
    assert.equal(String(tokens.access.scope), 'notes:read notes:delete');
    assert.deepEqual(tokens.access.amr, ['pwd', 'otp', 'mfa']);
  });
});
