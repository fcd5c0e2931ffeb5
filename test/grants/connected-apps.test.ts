/**
 * "Connected apps" (/account/apps) as people use it: over HTTP with the fetch browser on both
 * stores, and once in headless Chromium. A person sees each app they allowed, with its MCP
 * server, scopes and times; revoking one kills its refresh token at once and its JWT access
 * tokens at a verifier following the revocation feed (pushed, within PUSH_BOUND_MS); "sign out of all apps"
 * does that for every grant of the person (and no one else's) and ends the browser session.
 * CSRF and ownership are enforced.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import type { Browser as Chromium } from 'playwright-core';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { authorize, Browser, formData, type Page, type ParsedForm } from '../helpers/browser-driver.js';
import { collectCspViolations, launchBrowser } from '../helpers/browser.js';
import { NOTES, PASSWORD, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { client } from '../helpers/rp.js';
import { SseClient, revocationFor } from '../helpers/sse.js';
import type { TestServer } from '../helpers/server.js';
import { createVerifier, type Verifier } from '../../src/verifier/index.js';
import { codeOf, eventually } from '../verifier/support.js';
import { PUSH_BOUND_MS } from '../helpers/timing.js';

const APPS = '/account/apps';

interface Connected {
  config: client.Configuration;
  tokens: { access_token: string; refresh_token?: string | undefined };
  grantId: string;
}

/** `username` allows `clientId` in `browser` (signing in there if it is not yet); the client redeems the code. */
async function connect(t: TestServer, browser: Browser, clientId: 'web-app' | 'confidential-web', username = 'alice'): Promise<Connected> {
  const { config, verifier, state, url } = await authorizationRequest(t, clientId, { scope: 'notes:read', resource: NOTES });
  const callback = await authorize(browser, url, REDIRECT, PASSWORD, { username });
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
  const grantId = decodeJwt(tokens.access_token).grant_id;
  assert.equal(typeof grantId, 'string');
  // the token endpoint records the grant's use without holding up its answer: wait for it
  await eventually(async () => (await t.server.store.grants.get(grantId as string))?.lastUsedAt !== undefined, 2000);
  return { config, tokens, grantId: grantId as string };
}

/** The page's text, tags removed and whitespace collapsed. */
const text = (page: Page) =>
  page.html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');

function revokeForm(page: Page, grantId: string): ParsedForm {
  const form = page.forms.find((f) => f.action.endsWith(`${APPS}/revoke`) && f.fields.some((x) => x.name === 'grant' && x.value === grantId));
  if (!form) throw new Error(`no revoke form for ${grantId} on ${page.url} (${page.status}): ${text(page).slice(0, 400)}`);
  return form;
}

function revokeAllForm(page: Page): ParsedForm {
  const form = page.forms.find((f) => f.action.endsWith(`${APPS}/revoke-all`));
  if (!form) throw new Error(`no sign-out-of-all form on ${page.url} (${page.status})`);
  return form;
}

async function refreshError(c: Connected): Promise<string> {
  try {
    await client.refreshTokenGrant(c.config, c.tokens.refresh_token!);
    return 'refreshed';
  } catch (err) {
    return (err as { error?: string }).error ?? String(err);
  }
}

const refused = (verifier: Verifier, token: string) => async () => (await codeOf(verifier.verifyAccessToken(token))) === 'ERR_TOKEN_REVOKED';

for (const kind of STORE_KINDS) {
  describe(`connected apps over HTTP (${kind})`, () => {
    const s = serverFixture(kind, { users: { alice: [], bob: [] } });
    let verifier: Verifier;

    before(async () => {
      verifier = createVerifier({ issuer: s.t.issuer, resource: NOTES, revocation: {} });
      await verifier.ready();
    });
    after(async () => {
      await verifier?.close();
    });

    it('without a browser session: a readable 401 page, and its forms do nothing', async () => {
      const page = await new Browser().go(s.t.url(APPS));
      assert.equal(page.status, 401);
      assert.match(text(page), /Sign in to see your connected apps/);
      assert.equal(page.forms.length, 0);
      assert.doesNotMatch(page.html, /at .*\.js:\d+/, 'no stack');
      for (const path of [`${APPS}/revoke`, `${APPS}/revoke-all`]) {
        const res = await fetch(s.t.url(path), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x&grant=y' });
        assert.equal(res.status, 401, path);
      }
    });

    it('lists the app alice allowed: client, MCP server, scope, when allowed and last used', async () => {
      const browser = new Browser();
      const { grantId } = await connect(s.t, browser, 'web-app');
      const page = await browser.go(s.t.url(APPS));
      assert.equal(page.status, 200);
      assert.equal(page.headers.get('cache-control'), 'no-store');
      const shown = text(page);
      for (const expected of [
        'Connected apps',
        'Signed in as alice',
        'Web App (name given by the app, not verified)',
        'web-app',
        'registered by your administrator',
        'Notes',
        `MCP server at ${NOTES}`,
        'notes:read',
        'Read your notes',
        'Revoke Web App',
        'Sign out of all apps',
      ]) {
        assert.ok(shown.includes(expected), `the page shows "${expected}": ${shown}`);
      }
      assert.ok(!shown.includes('notes:write'), 'only what was granted');
      const record = (await s.t.server.store.grants.get(grantId))!;
      assert.ok(page.html.includes(`datetime="${new Date(record.createdAt).toISOString()}"`), 'when it was allowed');
      assert.ok(page.html.includes(`datetime="${new Date(record.lastUsedAt!).toISOString()}"`), 'when it was last used');
      revokeForm(page, grantId);
    });

    it('Revoke: the grant and its tokens are gone, refresh is invalid_grant, the verifier following the feed refuses the access token', async () => {
      const browser = new Browser();
      const alice = await connect(s.t, browser, 'web-app');
      await verifier.verifyAccessToken(alice.tokens.access_token);
      const page = await browser.go(s.t.url(APPS));

      const done = await browser.submit(revokeForm(page, alice.grantId));
      const returned = Date.now();
      assert.equal(done.status, 200);
      assert.equal(new URL(done.url).pathname, APPS, 'back on the list (post/redirect/get)');
      assert.match(text(done), /that app can no longer access your account/);
      assert.ok(!done.html.includes(alice.grantId), 'the app is no longer listed');

      const elapsed = await eventually(refused(verifier, alice.tokens.access_token), PUSH_BOUND_MS);
      assert.ok(Date.now() - returned < PUSH_BOUND_MS, `refused ${elapsed} ms after the check started`);
      assert.equal(await refreshError(alice), 'invalid_grant');
      const { store } = s.t.server;
      assert.equal(await store.grants.get(alice.grantId), undefined);
      assert.equal(await store.model('Grant').find(alice.grantId), undefined);
      assert.ok(s.t.logs.some((l) => l.event === 'grant.revoked_by_user' && l.grantId === alice.grantId));
    });

    it('a form without a valid CSRF token is refused (403) and revokes nothing', async () => {
      const browser = new Browser();
      const alice = await connect(s.t, browser, 'web-app');
      const page = await browser.go(s.t.url(APPS));
      const form = revokeForm(page, alice.grantId);
      const valid = form.fields.find((f) => f.name === 'csrf')!.value;
      // tampered in its first character, which carries six bits of the token (replacing the last two
      // left it unchanged about once in a thousand runs: they carry ten, and may already read "AA")
      const tampered = `${valid[0] === 'A' ? 'B' : 'A'}${valid.slice(1)}`;
      for (const csrf of [undefined, '', tampered]) {
        const body = formData(form, csrf === undefined ? {} : { csrf });
        if (csrf === undefined) body.delete('csrf');
        const refusedPage = await browser.go(form.action, { method: 'POST', body });
        assert.equal(refusedPage.status, 403, `csrf ${JSON.stringify(csrf)}`);
        assert.match(text(refusedPage), /Request blocked/);
      }
      // a valid token of another browser session does not work either
      const other = new Browser();
      const second = await connect(s.t, other, 'web-app');
      const otherCsrf = revokeForm(await other.go(s.t.url(APPS)), second.grantId).fields.find((f) => f.name === 'csrf')!.value;
      assert.equal((await browser.submit(form, { csrf: otherCsrf })).status, 403);
      const revokeAll = revokeAllForm(page);
      assert.equal((await browser.go(revokeAll.action, { method: 'POST', body: new URLSearchParams() })).status, 403);
      assert.ok(await s.t.server.store.grants.get(alice.grantId), 'still there');
      assert.equal(await refreshError(alice), 'refreshed');
    });

    it("bob cannot revoke alice's grant: 404, as for a grant that does not exist", async () => {
      const aliceBrowser = new Browser();
      const alice = await connect(s.t, aliceBrowser, 'web-app');
      const bobBrowser = new Browser();
      const bob = await connect(s.t, bobBrowser, 'web-app', 'bob');
      const bobsPage = await bobBrowser.go(s.t.url(APPS));
      assert.ok(text(bobsPage).includes('Signed in as bob'));
      assert.ok(!bobsPage.html.includes(alice.grantId), "alice's grant is not on bob's page");
      const form = revokeForm(bobsPage, bob.grantId);
      const stolen = await bobBrowser.submit(form, { grant: alice.grantId });
      assert.equal(stolen.status, 404);
      assert.match(text(stolen), /App not found/);
      const unknown = await bobBrowser.submit(form, { grant: 'no-such-grant' });
      assert.equal(unknown.status, 404);
      assert.ok(await s.t.server.store.grants.get(alice.grantId), "alice's grant stays");
      await verifier.verifyAccessToken(alice.tokens.access_token);
      assert.equal(await refreshError(alice), 'refreshed');
    });

    it("sign out of all apps: every grant of alice's goes (not bob's), her tokens are refused, the browser session ends", async () => {
      const { store } = s.t.server;
      const aliceId = (await store.accounts.findByUsername('alice'))!.id;
      const browser = new Browser();
      const web = await connect(s.t, browser, 'web-app');
      const confidential = await connect(s.t, browser, 'confidential-web');
      const bob = await connect(s.t, new Browser(), 'web-app', 'bob');
      const page = await browser.go(s.t.url(APPS));
      revokeForm(page, web.grantId);
      revokeForm(page, confidential.grantId);
      for (const token of [web.tokens.access_token, confidential.tokens.access_token, bob.tokens.access_token]) await verifier.verifyAccessToken(token);

      const sse = new SseClient(s.t.url('/revocations'));
      try {
        await sse.next((e) => e.event === 'ready');
        const done = await browser.submit(revokeAllForm(page));
        const returned = Date.now();
        assert.equal(done.status, 200);
        assert.match(text(done), /Signed out of all apps/);
        assert.match(text(done), /\d+ apps have lost access/);
        await eventually(refused(verifier, web.tokens.access_token), PUSH_BOUND_MS);
        await eventually(refused(verifier, confidential.tokens.access_token), PUSH_BOUND_MS);
        assert.ok(Date.now() - returned < PUSH_BOUND_MS, `both refused within ${Date.now() - returned} ms`);
        await sse.next(revocationFor('subject', aliceId), PUSH_BOUND_MS);
        await sse.next(revocationFor('grant', confidential.grantId), PUSH_BOUND_MS);
      } finally {
        await sse.close();
      }
      assert.equal(await refreshError(web), 'invalid_grant');
      assert.equal(await refreshError(confidential), 'invalid_grant');
      assert.deepEqual(await store.grants.list({ accountId: aliceId }), [], 'every grant of alice, from every session');

      await verifier.verifyAccessToken(bob.tokens.access_token);
      assert.equal(await refreshError(bob), 'refreshed');
      assert.ok(await store.grants.get(bob.grantId), "bob's grant stays");

      const after = await browser.go(s.t.url(APPS));
      assert.equal(after.status, 401, 'the browser is signed out');
      // the next authorization in this browser asks for the password again
      const { url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read', resource: NOTES });
      const login = await browser.go(url, {}, REDIRECT);
      assert.ok(login.forms.some((f) => f.action.endsWith('/login')), 'a sign-in page');
    });
  });
}

describe('connected apps in headless Chromium (sqlite)', () => {
  const s = serverFixture('sqlite');
  let chromium: Chromium;
  let verifier: Verifier;

  before(async () => {
    chromium = await launchBrowser();
    verifier = createVerifier({ issuer: s.t.issuer, resource: NOTES, revocation: {} });
    await verifier.ready();
  });
  after(async () => {
    await chromium?.close();
    await verifier?.close();
  });

  it('alice allows Web App, finds it on her connected apps, clicks Revoke: refresh fails, the verifier following the feed refuses', async () => {
    const context = await chromium.newContext({ viewport: { width: 390, height: 844 } });
    context.setDefaultTimeout(10_000);
    try {
      const page = await context.newPage();
      const violations = await collectCspViolations(page);
      const dialogs: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });

      const { config, verifier: pkce, state, url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read', resource: NOTES });
      await page.goto(url);
      await page.fill('#username', 'alice');
      await page.fill('#password', PASSWORD);
      await Promise.all([page.waitForNavigation(), page.click('button:text("Sign in")')]);
      const redirected = page.waitForRequest((r) => r.url().startsWith(REDIRECT));
      await page.click('button:text("Allow")');
      const callback = new URL((await redirected).url());
      await page.waitForURL((u) => u.protocol === 'chrome-error:');
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: pkce, expectedState: state }, { resource: NOTES });
      await verifier.verifyAccessToken(tokens.access_token);

      const listed = await page.goto(s.t.url(APPS));
      assert.equal(listed?.status(), 200);
      assert.equal((await page.textContent('h1'))?.trim(), 'Connected apps');
      const app = page.locator('section.connected-app', { hasText: 'Web App' });
      assert.equal(await app.count(), 1);
      const shown = ((await app.textContent()) ?? '').replace(/\s+/g, ' ');
      for (const expected of ['Web App', 'web-app', 'Notes', NOTES, 'notes:read', 'Read your notes']) {
        assert.ok(shown.includes(expected), `shows "${expected}": ${shown}`);
      }
      assert.ok(Number(await page.evaluate('document.documentElement.scrollWidth')) <= 390, 'fits a phone screen');

      await Promise.all([page.waitForNavigation(), app.locator('button:text("Revoke")').click()]);
      const returned = Date.now();
      assert.match((await page.textContent('main')) ?? '', /that app can no longer access your account/);
      assert.equal(await page.locator('section.connected-app').count(), 0);
      await eventually(refused(verifier, tokens.access_token), PUSH_BOUND_MS);
      const elapsed = Date.now() - returned;
      assert.ok(elapsed < PUSH_BOUND_MS, `refused after ${elapsed} ms`);
      await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant');
      assert.deepEqual(dialogs, []);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });
});
