/**
 * Consent in headless Chromium, as a person uses the page: a dangerous scope is never granted
 * without its own tick (not the first time, not from remembered consent), and a scope the
 * person's role does not allow is visibly not available and never issued.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { fixtureConfig, NOTES, PASSWORD, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { client, jwt } from '../helpers/rp.js';

function config() {
  const base = fixtureConfig();
  const [notes, ...others] = base.resources!;
  return {
    clients: base.clients!,
    resources: [
      {
        ...notes!,
        scopes: {
          'notes:read': { description: 'Read your notes' },
          'notes:delete': { description: 'Delete notes', dangerous: true, tools: ['delete_note'] },
          'notes:admin': { description: 'Manage everyone’s notes', allow: ['role:admin'] },
        },
      },
      ...others,
    ],
  };
}

const box = (page: Page, scope: string) => page.locator(`label.scope:has(.scope-name:text-is("${scope}")) input[type="checkbox"]`);

describe('consent in headless Chromium', () => {
  let t: TestServer;
  let browser: Browser;
  before(async () => {
    [t, browser] = await Promise.all([startServer({ store: 'sqlite', config: config(), users: { alice: [], bob: ['admin'] } }), launchBrowser()]);
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  /** Opens an authorization for web-app in `page`, signing in when asked, and returns what redeems it. */
  async function openConsent(page: Page, scope: string, username: string) {
    const request = await authorizationRequest(t, 'web-app', { scope, resource: NOTES });
    await page.goto(request.url);
    if (await page.locator('#username').count()) {
      await page.fill('#username', username);
      await page.fill('#password', PASSWORD);
      await Promise.all([page.waitForNavigation(), page.click('button:text("Sign in")')]);
    }
    assert.equal(((await page.textContent('h1')) ?? '').trim(), 'Allow access?');
    return request;
  }

  async function allow(page: Page, request: Awaited<ReturnType<typeof authorizationRequest>>) {
    const redirected = page.waitForRequest((r) => r.url().startsWith(REDIRECT));
    await page.click('button:text("Allow")');
    const callback = new URL((await redirected).url());
    await page.waitForURL((u) => u.protocol === 'chrome-error:');
    const tokens = await client.authorizationCodeGrant(request.config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state });
    return String(jwt(tokens.access_token).payload.scope);
  }

  test('a dangerous scope is granted only with its own tick, every time', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      let request = await openConsent(page, 'notes:read notes:delete', 'alice');
      assert.equal(await box(page, 'notes:delete').isChecked(), false, 'never preselected');
      assert.match((await page.textContent('main')) ?? '', /delete_note/);
      assert.equal(await allow(page, request), 'notes:read', 'Allow without the tick: not granted');

      request = await openConsent(page, 'notes:read notes:delete', 'alice');
      await box(page, 'notes:delete').check();
      assert.equal(await allow(page, request), 'notes:read notes:delete', 'ticked: granted');

      request = await openConsent(page, 'notes:read notes:delete', 'alice');
      assert.equal(await box(page, 'notes:delete').isChecked(), false, 'remembered consent does not tick it');
      assert.match((await page.textContent('main')) ?? '', /asked every time/);
      assert.equal(await allow(page, request), 'notes:read', 'not ticked again: not granted');
    } finally {
      await context.close();
    }
  });

  test('a scope the role does not allow is shown as not available and never issued', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      const request = await openConsent(page, 'notes:read notes:admin', 'alice');
      assert.equal(await box(page, 'notes:admin').isDisabled(), true);
      assert.equal(await box(page, 'notes:admin').isChecked(), false);
      assert.match((await page.textContent('main')) ?? '', /Not available to you/);
      assert.equal(await allow(page, request), 'notes:read');
    } finally {
      await context.close();
    }
    const adminContext = await browser.newContext();
    const adminPage = await adminContext.newPage();
    try {
      const request = await openConsent(adminPage, 'notes:read notes:admin', 'bob');
      assert.equal(await box(adminPage, 'notes:admin').isDisabled(), false);
      assert.equal(await allow(adminPage, request), 'notes:read notes:admin');
    } finally {
      await adminContext.close();
    }
  });
});
