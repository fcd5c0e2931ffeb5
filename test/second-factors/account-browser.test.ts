/**
 * The account's second factors in headless Chromium, as a person uses them: set up an
 * authenticator app on the account page (the secret shown there, the first code checked), see the
 * recovery codes once, be asked for a code at the next sign-in, remove the app; add a passkey
 * through Chromium's virtual authenticator (the page's own script, under the strict CSP) and
 * sign in with it as the second factor. The issuer is `localhost`: WebAuthn refuses IP addresses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { collectCspViolations, launchBrowser } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { authorizationRequest, type AuthorizationRequest } from '../helpers/flows.js';
import { client, jwt } from '../helpers/rp.js';
import { readSecondFactors } from '../../src/accounts/second-factors.js';
import { ACR_MFA } from '../../src/second-factors/policy.js';
import { auditRecords, codeOf, NOTES, PASSWORD, REDIRECT } from './support.js';

describe('second factors in headless Chromium', { timeout: 180_000 }, () => {
  let t: TestServer;
  let browser: Browser;
  before(async () => {
    [t, browser] = await Promise.all([
      startServer({ store: 'sqlite', issuerHost: 'localhost', users: { alice: [], bob: [] }, config: { audit: { sink: 'file' } } as never }),
      launchBrowser(),
    ]);
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  const heading = async (page: Page) => ((await page.textContent('h1')) ?? '').trim();

  /** Opens an authorization and types the password: the page that follows is loaded. */
  async function signIn(page: Page, username: string): Promise<AuthorizationRequest> {
    const request = await authorizationRequest(t, 'web-app', { scope: 'openid notes:read', resource: NOTES });
    await page.goto(request.url);
    await page.fill('#username', username);
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click('button:text("Sign in")')]);
    return request;
  }

  /** Allows the consent page and redeems the code: the tokens' claims. */
  async function allow(page: Page, request: AuthorizationRequest) {
    assert.equal(await heading(page), 'Allow access?');
    const redirected = page.waitForRequest((r) => r.url().startsWith(REDIRECT));
    await page.click('button:text("Allow")');
    const callback = new URL((await redirected).url());
    await page.waitForURL((u) => u.protocol === 'chrome-error:');
    const tokens = await client.authorizationCodeGrant(request.config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state });
    return { access: jwt(tokens.access_token).payload as Record<string, unknown>, id: jwt(tokens.id_token!).payload as Record<string, unknown> };
  }

  async function fresh(): Promise<{ context: BrowserContext; page: Page; csp: Awaited<ReturnType<typeof collectCspViolations>> }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    return { context, page, csp: await collectCspViolations(page) };
  }

  test('an authenticator app: set up on the account page, asked at the next sign-in, removed', async () => {
    const first = await fresh();
    try {
      await allow(first.page, await signIn(first.page, 'alice'));
      await first.page.goto(t.url('/account/security'));
      assert.equal(await heading(first.page), 'Sign-in security');
      await Promise.all([first.page.waitForNavigation(), first.page.click('a:text("Set up an authenticator app")')]);
      const secret = ((await first.page.textContent('.totp-secret')) ?? '').trim();
      assert.match(secret, /^[A-Z2-7]{32}$/, 'the secret, as text');
      assert.match((await first.page.getAttribute('.totp-uri', 'href')) ?? '', /^otpauth:\/\/totp\/.*secret=/);
      await first.page.fill('#code', await codeOf(secret));
      await Promise.all([first.page.waitForNavigation(), first.page.click('button:text("Verify and save")')]);
      const codes = (await first.page.locator('.recovery-codes code').allTextContents()).map((c) => c.trim());
      assert.equal(codes.length, 10, 'ten recovery codes, shown once');
      await Promise.all([first.page.waitForNavigation(), first.page.click('a:text("I have saved them")')]);
      assert.match((await first.page.textContent('main')) ?? '', /Set up on/);
      assert.deepEqual(first.csp, [], 'no CSP violation');
    } finally {
      await first.context.close();
    }
    const stored = readSecondFactors((await t.server.store.accounts.findByUsername('alice'))!);
    assert.ok(stored.state === 'ok' && stored.factors.totp && stored.factors.recoveryCodes.length === 10);
    const secret = stored.factors.totp.secret;

    const second = await fresh();
    try {
      const request = await signIn(second.page, 'alice');
      assert.equal(await heading(second.page), 'Second step', 'the code is asked');
      // the enrolment used this time step's code: the next step's (a clock a little fast) is accepted
      await second.page.fill('#code', await codeOf(secret, 1));
      await Promise.all([second.page.waitForNavigation(), second.page.click('button:text("Verify")')]);
      const { access, id } = await allow(second.page, request);
      assert.deepEqual(id.amr, ['pwd', 'otp', 'mfa']);
      assert.equal(access.acr, ACR_MFA);

      // this session had the second factor: the app may be removed
      await second.page.goto(t.url('/account/security'));
      await Promise.all([second.page.waitForNavigation(), second.page.click('button:text("Remove authenticator app")')]);
      assert.match((await second.page.textContent('main')) ?? '', /was removed/);
      assert.deepEqual(second.csp, []);
    } finally {
      await second.context.close();
    }
    assert.equal((await t.server.store.accounts.findByUsername('alice'))!.secondFactors, undefined, 'nothing left: the recovery codes went too');
    const { records, text } = await auditRecords(t);
    const aliceId = (await t.server.store.accounts.findByUsername('alice'))!.id;
    for (const event of ['second_factor.enrolled', 'second_factor.verified', 'second_factor.removed']) {
      assert.ok(records.some((r) => r.event === event && r.actor === aliceId), `${event} audited`);
    }
    assert.ok(!text.includes(secret), 'the audit never holds the secret');
  });

  test('a passkey: added on the account page with a virtual authenticator, the second factor at sign-in, confirms it is you on the account page, removed', async () => {
    const { context, page, csp } = await fresh();
    try {
      const cdp = await context.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
      });
      await allow(page, await signIn(page, 'bob'));
      await page.goto(t.url('/account/security'));
      await page.fill('#passkey-name', 'Laptop <b>');
      await Promise.all([page.waitForNavigation(), page.click('button:text("Add a passkey")')]);
      assert.equal((await page.locator('.recovery-codes code').count()), 10, 'the first factor comes with recovery codes');
      await Promise.all([page.waitForNavigation(), page.click('a:text("I have saved them")')]);
      assert.equal(((await page.textContent('.passkey-name')) ?? '').trim(), 'Laptop <b>', 'listed, as text');
      const stored = readSecondFactors((await t.server.store.accounts.findByUsername('bob'))!);
      assert.ok(stored.state === 'ok' && stored.factors.passkeys.length === 1);

      // signed out (cookies gone), the authenticator still there: sign in again
      await context.clearCookies();
      const request = await signIn(page, 'bob');
      assert.equal(await heading(page), 'Second step');
      await Promise.all([page.waitForNavigation(), page.click('button:text("Use a passkey")')]);
      const { access, id } = await allow(page, request);
      assert.deepEqual(id.amr, ['pwd', 'hwk', 'mfa']);
      assert.deepEqual(access.amr, ['pwd', 'hwk', 'mfa']);
      assert.equal(id.acr, ACR_MFA);
      assert.deepEqual(csp, [], 'no CSP violation');
      const after = readSecondFactors((await t.server.store.accounts.findByUsername('bob'))!);
      assert.ok(after.state === 'ok' && after.factors.passkeys[0]!.counter >= stored.factors.passkeys[0]!.counter);

      // a session with the password only (signed in while bob had no factor): the passkey
      // confirms it is him on the account page before it may be removed
      await context.clearCookies();
      const saved = (await t.server.store.accounts.findByUsername('bob'))!.secondFactors!;
      await t.server.store.accounts.update('bob', { secondFactors: '' });
      await allow(page, await signIn(page, 'bob'));
      await t.server.store.accounts.update('bob', { secondFactors: saved });
      await page.goto(t.url('/account/security'));
      assert.equal(await page.locator('button:text("Remove Laptop <b>")').count(), 0, 'no removal before confirming');
      await Promise.all([page.waitForNavigation(), page.click('.verify button:text("Use a passkey")')]);
      assert.match((await page.textContent('main')) ?? '', /Verified/);
      await Promise.all([page.waitForNavigation(), page.click('button:text("Remove Laptop <b>")')]);
      assert.match((await page.textContent('main')) ?? '', /passkey was removed/);
      assert.equal((await t.server.store.accounts.findByUsername('bob'))!.secondFactors, undefined, 'no factor left: the recovery codes went too');
      assert.deepEqual(csp, [], 'no CSP violation');
    } finally {
      await context.close();
    }
  });
});
