/**
 * TOTP and recovery codes at sign-in, through the real pages (the protocol browser): after
 * the password, a person with a factor is asked for a code; wrong codes are refused, audited
 * and limited like passwords; a code works once, a recovery code too; the tokens say how the
 * person signed in (`amr`, `acr`). Policy: roles and clients that require a factor make a
 * person without one enrol at sign-in. A record that does not parse is a readable page.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { ACR_MFA, ACR_ONE_FACTOR } from '../../src/second-factors/policy.js';
import { readSecondFactors } from '../../src/accounts/second-factors.js';
import { NOTES, PASSWORD, SECRET } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { auditRecords, Browser, codeOf, consentAndRedeem, enrolTotp, findForm, isSecondFactorPage, REDIRECT, signIn, wrongCodeOf } from './support.js';

describe('TOTP at sign-in', { timeout: 120_000 }, () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({
      store: 'sqlite',
      users: { alice: [], bob: [], carol: [], dave: ['admin'], erin: [], frank: [], gina: [], kim: [], lee: [], max: [] },
      config: {
        audit: { sink: 'file' },
        secondFactor: { requireForRoles: ['admin'], requireForClients: ['confidential-web'] },
        rateLimits: { signInPerSource: { max: 100, window: 900 } },
      } as never,
    });
  });
  after(async () => {
    await t?.stop();
  });

  const codeForm = (page: Awaited<ReturnType<Browser['go']>>) => findForm(page, '/second-factor');

  test('after the password a code is asked; a wrong one is refused and audited, the right one signs in with otp and mfa in both tokens', async () => {
    const { secret } = await enrolTotp(t, 'alice');
    const browser = new Browser();
    const { request, page } = await signIn(t, browser);
    assert.ok(isSecondFactorPage(page), 'the second-factor page, not consent');
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.html, new RegExp(secret), 'the secret is never shown at sign-in');

    const wrong = await browser.submit(codeForm(page), { code: await wrongCodeOf(secret) }, undefined, REDIRECT);
    assert.equal(wrong.status, 401);
    assert.match(wrong.html, /not right/);
    const { records } = await auditRecords(t);
    const aliceId = (await t.server.store.accounts.findByUsername('alice'))!.id;
    assert.ok(records.some((r) => r.event === 'second_factor.failed' && r.actor === aliceId && r.details?.reason === 'wrong_code'), 'the wrong code is audited');

    const consent = await browser.submit(codeForm(wrong), { code: await codeOf(secret) }, undefined, REDIRECT);
    assert.ok(consent.forms.some((f) => f.action.endsWith('/confirm')), 'on to consent');
    const { access, id, tokens } = await consentAndRedeem(browser, consent, request);
    assert.deepEqual(id?.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(id?.acr, ACR_MFA);
    assert.deepEqual(access.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(access.acr, ACR_MFA);
    assert.equal(typeof access.auth_time, 'number');
    // the MCP server that introspects instead of verifying sees the same
    const res = await fetch(t.url('/token/introspection'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`notes-server:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ token: tokens.access_token }),
    });
    const introspected = (await res.json()) as Record<string, unknown>;
    assert.equal(introspected.active, true);
    assert.deepEqual(introspected.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(introspected.acr, ACR_MFA);
    const after = await auditRecords(t);
    assert.ok(after.records.some((r) => r.event === 'second_factor.verified' && r.actor === aliceId && r.details?.method === 'totp'));
    assert.ok(!after.text.includes(secret), 'the audit never holds the secret');
  });

  test('a code is accepted once: the same code, in another browser in the same time step, is refused', async () => {
    const { secret } = await enrolTotp(t, 'bob');
    const code = await codeOf(secret);
    const firstBrowser = new Browser();
    const again = await signIn(t, firstBrowser, { username: 'bob' });
    const ok = await firstBrowser.submit(codeForm(again.page), { code }, undefined, REDIRECT);
    assert.ok(ok.forms.some((f) => f.action.endsWith('/confirm')), 'the code works the first time');
    const replayBrowser = new Browser();
    const replay = await signIn(t, replayBrowser, { username: 'bob' });
    const refused = await replayBrowser.submit(codeForm(replay.page), { code }, undefined, REDIRECT);
    assert.equal(refused.status, 401, 'the same code again is refused');
    assert.ok(isSecondFactorPage(refused));
    const stored = readSecondFactors((await t.server.store.accounts.findByUsername('bob'))!);
    assert.ok(stored.state === 'ok' && typeof stored.factors.totp?.lastUsedStep === 'number', 'the used step is remembered');
  });

  test('a recovery code stands in for the code once, and is then used up', async () => {
    const { codes } = await enrolTotp(t, 'carol');
    const browser = new Browser();
    const { request, page } = await signIn(t, browser, { username: 'carol' });
    const consent = await browser.submit(codeForm(page), { code: codes[3]!.toUpperCase() }, undefined, REDIRECT);
    assert.ok(consent.forms.some((f) => f.action.endsWith('/confirm')), 'the recovery code signs in');
    const { id } = await consentAndRedeem(browser, consent, request);
    assert.deepEqual(id?.amr, ['pwd', 'otp', 'mfa']);
    const stored = readSecondFactors((await t.server.store.accounts.findByUsername('carol'))!);
    assert.ok(stored.state === 'ok');
    assert.equal(stored.factors.recoveryCodes.length, 9, 'one code used up');

    const other = new Browser();
    const second = await signIn(t, other, { username: 'carol' });
    const refused = await other.submit(codeForm(second.page), { code: codes[3]! }, undefined, REDIRECT);
    assert.equal(refused.status, 401, 'the same recovery code again is refused');
  });

  test('the finished step cannot be replayed: its record is used up', async () => {
    const { secret } = await enrolTotp(t, 'frank');
    const browser = new Browser();
    const { page } = await signIn(t, browser, { username: 'frank' });
    const form = codeForm(page);
    const consent = await browser.submit(form, { code: await codeOf(secret) }, undefined, REDIRECT);
    assert.ok(consent.forms.some((f) => f.action.endsWith('/confirm')));
    const replay = await browser.submit(form, { code: await codeOf(secret) }, undefined, REDIRECT);
    assert.equal(replay.status, 400, 'the interaction is past the login prompt, and the pending record is gone');
  });

  test('bad input is answered, never a 500: an overlong code, no CSRF token', async () => {
    const { secret } = await enrolTotp(t, 'frank');
    const browser = new Browser();
    const { page } = await signIn(t, browser, { username: 'frank' });
    const long = await browser.submit(codeForm(page), { code: 'x'.repeat(64) }, undefined, REDIRECT);
    assert.equal(long.status, 401);
    const tooLong = await browser.submit(codeForm(page), { code: 'x'.repeat(65) }, undefined, REDIRECT);
    assert.equal(tooLong.status, 400);
    const noCsrf = await browser.submit(codeForm(page), { csrf: '', code: await codeOf(secret) }, undefined, REDIRECT);
    assert.equal(noCsrf.status, 403);
  });

  test('without a factor and without a policy requiring one, the password alone signs in (acr pwd)', async () => {
    const browser = new Browser();
    const { request, page } = await signIn(t, browser, { username: 'erin' });
    assert.ok(!isSecondFactorPage(page));
    const { id, access } = await consentAndRedeem(browser, page, request);
    assert.deepEqual(id?.amr, ['pwd']);
    assert.equal(id?.acr, ACR_ONE_FACTOR);
    assert.equal(access.acr, ACR_ONE_FACTOR);
    assert.deepEqual(access.amr, ['pwd']);
  });

  test('requireForRoles: an admin without a factor enrols an authenticator at sign-in, sees recovery codes once, and is asked for the code next time', async () => {
    const browser = new Browser();
    const { request, page } = await signIn(t, browser, { username: 'dave' });
    assert.ok(isSecondFactorPage(page), 'asked to enrol');
    const secret = /<code class="totp-secret">([A-Z2-7]+)<\/code>/.exec(page.html)?.[1];
    assert.ok(secret, 'the secret is shown as text');
    assert.match(page.html, new RegExp(`otpauth://totp/[^"]*secret=${secret}`), 'and as an otpauth:// URI');
    const wrong = await browser.submit(codeForm(page), { code: await wrongCodeOf(secret) }, undefined, REDIRECT);
    assert.equal(wrong.status, 401, 'a wrong first code saves nothing');
    assert.equal((await t.server.store.accounts.findByUsername('dave'))!.secondFactors, undefined);
    const codesPage = await browser.submit(codeForm(wrong), { code: await codeOf(secret) }, undefined, REDIRECT);
    const codes = [...codesPage.html.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map((m) => m[1]!);
    assert.equal(codes.length, 10, 'ten recovery codes shown');
    const consent = await browser.submit(findForm(codesPage, '/second-factor/continue'), {}, undefined, REDIRECT);
    const { id } = await consentAndRedeem(browser, consent, request);
    assert.deepEqual(id?.amr, ['pwd', 'otp', 'mfa']);

    const next = new Browser();
    const again = await signIn(t, next, { username: 'dave' });
    assert.ok(isSecondFactorPage(again.page));
    assert.doesNotMatch(again.page.html, /totp-secret/, 'asked for a code, not to enrol again');
    const done = await next.submit(codeForm(again.page), { code: codes[0]! }, undefined, REDIRECT);
    assert.ok(done.forms.some((f) => f.action.endsWith('/confirm')));
    const { records } = await auditRecords(t);
    const daveId = (await t.server.store.accounts.findByUsername('dave'))!.id;
    assert.ok(records.some((r) => r.event === 'second_factor.enrolled' && r.actor === daveId && r.details?.context === 'sign-in'));
  });

  test('requireForClients: a sign-in for that client asks a person without a factor to enrol; other clients do not', async () => {
    const browser = new Browser();
    const { page } = await signIn(t, browser, { username: 'erin', clientId: 'confidential-web', scope: 'openid notes:read' });
    assert.ok(isSecondFactorPage(page), 'confidential-web requires a second factor');
    assert.match(page.html, /totp-secret/, 'enrolment, since erin has none');
    const plain = new Browser();
    const other = await signIn(t, plain, { username: 'erin' });
    assert.ok(!isSecondFactorPage(other.page), 'web-app does not');
  });

  test('requireForClients is checked at every authorization request: a password-only session from another client is asked for the second factor first', async () => {
    const browser = new Browser();
    const plain = await signIn(t, browser, { username: 'lee' });
    assert.ok(!isSecondFactorPage(plain.page), 'web-app needs no second factor');
    assert.equal((await consentAndRedeem(browser, plain.page, plain.request)).access.acr, ACR_ONE_FACTOR);
    // set up while signed in (as on the account security page): the session still had none
    const { secret } = await enrolTotp(t, 'lee');

    const request = await authorizationRequest(t, 'confidential-web', { scope: 'openid notes:read', resource: NOTES });
    let page = await browser.go(request.url, {}, REDIRECT);
    assert.ok(!page.url.startsWith(REDIRECT), 'not straight back to the app');
    assert.ok(page.forms.some((f) => f.action.endsWith('/login')), 'signed in with the password only: the login page again, not consent');
    page = await browser.submit(findForm(page, '/login'), { username: 'lee', password: PASSWORD }, undefined, REDIRECT);
    assert.ok(isSecondFactorPage(page), 'the second factor is asked');
    const wrong = await browser.submit(codeForm(page), { code: await wrongCodeOf(secret) }, undefined, REDIRECT);
    assert.equal(wrong.status, 401, 'a wrong code is refused');
    assert.ok(isSecondFactorPage(wrong));
    const consent = await browser.submit(codeForm(wrong), { code: await codeOf(secret) }, undefined, REDIRECT);
    assert.ok(consent.forms.some((f) => f.action.endsWith('/confirm')), 'the right code: on to consent');
    const { id, access } = await consentAndRedeem(browser, consent, request);
    assert.deepEqual(access.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(access.acr, ACR_MFA);
    assert.equal(id?.acr, ACR_MFA);
  });

  test('requireForRoles is checked at every authorization request: a role given after a password-only sign-in makes the next authorization enrol a second factor', async () => {
    const browser = new Browser();
    const plain = await signIn(t, browser, { username: 'max' });
    assert.ok(!isSecondFactorPage(plain.page), 'no role yet: no second factor');
    assert.equal((await consentAndRedeem(browser, plain.page, plain.request)).access.acr, ACR_ONE_FACTOR);
    // given while the session lives (as `mcp-authz user` or an upstream group would)
    await t.server.store.accounts.update('max', { roles: ['admin'] });

    const request = await authorizationRequest(t, 'web-app', { scope: 'openid notes:read', resource: NOTES });
    let page = await browser.go(request.url, {}, REDIRECT);
    assert.ok(!page.url.startsWith(REDIRECT), 'not straight back to the app with the password-only session');
    assert.ok(page.forms.some((f) => f.action.endsWith('/login')), 'the login page again');
    page = await browser.submit(findForm(page, '/login'), { username: 'max', password: PASSWORD }, undefined, REDIRECT);
    const secret = /<code class="totp-secret">([A-Z2-7]+)<\/code>/.exec(page.html)?.[1];
    assert.ok(secret, 'no factor yet: enrol one');
    const wrong = await browser.submit(codeForm(page), { code: await wrongCodeOf(secret) }, undefined, REDIRECT);
    assert.equal(wrong.status, 401, 'a wrong code is refused');
    assert.equal((await t.server.store.accounts.findByUsername('max'))!.secondFactors, undefined, 'and saves nothing');
    page = await browser.submit(codeForm(wrong), { code: await codeOf(secret) }, undefined, REDIRECT);
    page = await browser.submit(findForm(page, '/second-factor/continue'), {}, undefined, REDIRECT);
    const { id, access } = await consentAndRedeem(browser, page, request);
    assert.deepEqual(access.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(access.acr, ACR_MFA);
    assert.equal(id?.acr, ACR_MFA);
  });

  test('acr_values naming urn:mcp-authz:acr:mfa: a session without a second factor signs in again, and one is required', async () => {
    const browser = new Browser();
    const plain = await signIn(t, browser, { username: 'kim' });
    assert.equal((await consentAndRedeem(browser, plain.page, plain.request)).id?.acr, ACR_ONE_FACTOR);

    const request = await authorizationRequest(t, 'web-app', { scope: 'openid notes:read', resource: NOTES, acr_values: ACR_MFA });
    let page = await browser.go(request.url, {}, REDIRECT);
    assert.ok(page.forms.some((f) => f.action.endsWith('/login')), 'signed in with the password only: the login page again');
    page = await browser.submit(findForm(page, '/login'), { username: 'kim', password: PASSWORD }, undefined, REDIRECT);
    const secret = /<code class="totp-secret">([A-Z2-7]+)<\/code>/.exec(page.html)?.[1];
    assert.ok(secret, 'no factor yet: enrol one');
    page = await browser.submit(codeForm(page), { code: await codeOf(secret) }, undefined, REDIRECT);
    page = await browser.submit(findForm(page, '/second-factor/continue'), {}, undefined, REDIRECT);
    const { id, access } = await consentAndRedeem(browser, page, request);
    assert.equal(id?.acr, ACR_MFA);
    assert.equal(access.acr, ACR_MFA);

    // the session has it now: the same request needs no new sign-in
    const again = await authorizationRequest(t, 'web-app', { scope: 'openid notes:read', resource: NOTES, acr_values: ACR_MFA });
    const done = await browser.go(again.url, {}, REDIRECT);
    assert.ok(!done.forms.some((f) => f.action.endsWith('/login')), 'no login page');
  });

  test('wrong codes are limited like passwords: after five, even the right code gets a 429 page', async () => {
    const { secret } = await enrolTotp(t, 'gina');
    const browser = new Browser();
    const { page } = await signIn(t, browser, { username: 'gina' });
    let current = page;
    for (let i = 0; i < 5; i++) {
      current = await browser.submit(codeForm(page), { code: await wrongCodeOf(secret) }, undefined, REDIRECT);
      assert.equal(current.status, 401, `wrong code ${i + 1}`);
    }
    const limited = await browser.submit(codeForm(page), { code: await codeOf(secret) }, undefined, REDIRECT);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.match(limited.html, /Too many/);
    const { records } = await auditRecords(t);
    assert.ok(records.some((r) => r.event === 'rate_limit.hit' && r.details?.limit === 'signInPerAccountSource'));
  });

  test('a second-factor record that does not parse: a readable page, a logged error, no sign-in', async () => {
    await t.server.store.accounts.update('frank', { secondFactors: '{"totp":{"secret":"not base32!"}}' });
    const browser = new Browser();
    const { page } = await signIn(t, browser, { username: 'frank' });
    assert.equal(page.status, 409);
    assert.match(page.html, /needs attention/);
    assert.ok(!page.url.startsWith(REDIRECT));
    const frankId = (await t.server.store.accounts.findByUsername('frank'))!.id;
    assert.ok(t.logs.some((l) => l.event === 'second_factor.unreadable' && l.accountId === frankId && l.level !== undefined));
  });
});
