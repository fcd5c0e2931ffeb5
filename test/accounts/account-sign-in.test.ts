/**
 * The account pages' own sign-in (/account/sign-in → the ordinary sign-in → /account/signed-in):
 * a browser without a session opens an account page, follows its "Sign in" link, types the
 * password (and the second factor, when the account has one) and lands back on the page it
 * came from, signed in — on both stores, and once in headless Chromium. Return paths that
 * would leave the account pages land on connected apps; a forged or replayed callback is a
 * readable page; the account client never appears among connected apps and its code is gone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Browser as Chromium } from 'playwright-core';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { authorize, Browser, findForm, type Page } from '../helpers/browser-driver.js';
import { collectCspViolations, launchBrowser } from '../helpers/browser.js';
import { NOTES, PASSWORD, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { client } from '../helpers/rp.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { fixtureConfig } from '../helpers/fixtures.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { safeReturnPath, signInHref } from '../../src/http/account-paths.js';
import { ACCOUNT_CLIENT_ID } from '../../src/provider/account-client.js';
import { auditRecords, codeOf, enrolTotp, isSecondFactorPage } from '../second-factors/support.js';

const APPS = '/account/apps';
const SECURITY = '/account/security';

/** The "Sign in" link of a not-signed-in account page. */
function signInLink(page: Page): string {
  const href = /<a class="[^"]*sign-in-link[^"]*" href="([^"]+)"/.exec(page.html)?.[1];
  if (!href) throw new Error(`no sign-in link on ${page.url} (${page.status})`);
  return new URL(href.replace(/&amp;/g, '&').replace(/&#x2F;/g, '/').replace(/&#x3D;/g, '='), page.url).href;
}

/** Follows `url` (a sign-in link) through the login page with the password: the page it ends on. */
async function signInThrough(browser: Browser, url: string, username = 'alice'): Promise<Page> {
  const login = await browser.go(url);
  assert.equal(login.status, 200, `the login page (${login.url})`);
  return browser.submit(findForm(login, '/login'), { username, password: PASSWORD });
}

describe('safeReturnPath', () => {
  test('paths of the account pages and approvals pass, with their query', () => {
    assert.equal(safeReturnPath('', '/account/apps'), '/account/apps');
    assert.equal(safeReturnPath('', '/account/security?done=totp'), '/account/security?done=totp');
    assert.equal(safeReturnPath('', '/approvals/abc_123'), '/approvals/abc_123');
    assert.equal(safeReturnPath('/tenant', '/tenant/approvals/x'), '/tenant/approvals/x');
  });
  test('anything else is connected apps', () => {
    for (const raw of [
      undefined,
      '',
      ['/account/apps'],
      '//evil.com',
      '//evil.com/account/apps',
      'https://evil.com/account/apps',
      'javascript:alert(1)',
      '/\\evil.com',
      '\\\\evil.com',
      '/account/../../evil',
      '/account/..',
      '/account/./apps/../../x',
      '/account/%2e%2e/%2e%2e/x',
      '/account/%2F%2Fevil.com',
      '/%2F%2Fevil.com/account/',
      '/account/%5C%5Cevil.com',
      '/account/%252e%252e/x',
      '/account/apps\r\nLocation: https://evil.com',
      '/account/apps#frag',
      '/account/\tapps',
      '/token',
      '/account',
      '/accounts/apps',
      '/account/sign-in?return=/account/apps',
      '/account/signed-in',
      '/tenant/account/apps',
    ]) {
      assert.equal(safeReturnPath('', raw), '/account/apps', JSON.stringify(raw));
    }
    assert.equal(safeReturnPath('/tenant', '/account/apps'), '/tenant/account/apps', 'outside the issuer path');
    assert.equal(safeReturnPath('/tenant', '/tenantx/account/apps'), '/tenant/account/apps');
  });
  test('signInHref encodes the return path', () => {
    assert.equal(signInHref('/t', '/t/approvals/a?b=c&d'), '/t/account/sign-in?return=%2Ft%2Fapprovals%2Fa%3Fb%3Dc%26d');
  });
});

for (const kind of STORE_KINDS) {
  describe(`the account sign-in (${kind})`, { timeout: 120_000 }, () => {
    const s = serverFixture(kind, { users: { alice: [], bob: [] }, config: { audit: { sink: 'file' } } as never });

    test('no session: connected apps → Sign in → password → back on connected apps, signed in', async () => {
      const { t } = s;
      const browser = new Browser();
      const before = await browser.go(t.url(APPS));
      assert.equal(before.status, 401);
      assert.match(before.html, /not signed in/);
      const link = signInLink(before);
      assert.equal(new URL(link).pathname, '/account/sign-in');
      assert.equal(new URL(link).searchParams.get('return'), APPS);
      const after = await signInThrough(browser, link);
      assert.equal(after.status, 200, after.html.slice(0, 300));
      assert.equal(new URL(after.url).pathname, APPS);
      assert.match(after.html, /Signed in as <strong class="account-name">alice<\/strong>/);
      assert.match(after.html, /No app can access your account/, 'the account client is no app');

      // the account client has no stored grant, no directory record, and its code is gone
      const alice = (await t.server.store.accounts.findByUsername('alice'))!;
      assert.deepEqual((await t.server.store.grants.list({ accountId: alice.id })).filter((g) => g.clientId === ACCOUNT_CLIENT_ID), []);
      assert.equal(await t.server.store.clients.get(ACCOUNT_CLIENT_ID), undefined);
      const { records, text } = await auditRecords(t);
      assert.ok(records.some((r) => r.event === 'login.succeeded' && r.actor === alice.id), 'login.succeeded audited');
      assert.ok(!records.some((r) => r.event === 'consent.granted' && (r as { client?: string }).client === ACCOUNT_CLIENT_ID), 'no consent');
      assert.doesNotMatch(text, /"code":"[A-Za-z0-9_-]{20,}"/);

      // signed in now: the security page opens too, and a second sign-in needs no password
      const security = await browser.go(t.url(SECURITY));
      assert.equal(security.status, 200);
      const again = await browser.go(t.url(`/account/sign-in?return=${encodeURIComponent(SECURITY)}`));
      assert.equal(new URL(again.url).pathname, SECURITY);
      assert.equal(again.status, 200);
    });

    test('the security page signs in and comes back to itself', async () => {
      const browser = new Browser();
      const before = await browser.go(s.t.url(SECURITY));
      assert.equal(before.status, 401);
      const link = signInLink(before);
      assert.equal(new URL(link).searchParams.get('return'), SECURITY);
      const after = await signInThrough(browser, link, 'bob');
      assert.equal(new URL(after.url).pathname, SECURITY);
      assert.equal(after.status, 200);
      assert.match(after.html, /bob/);
    });

    test('hostile return paths land on connected apps', async () => {
      const browser = new Browser();
      let first = true;
      for (const raw of ['//evil.com', 'https://evil.com', '/\\evil.com', '/account/../..', '/account/%2e%2e/%2e%2e/evil', '%2F%2Fevil.com', '/%5Cevil.com', 'https:%2F%2Fevil.com']) {
        const start = t().url(`/account/sign-in?return=${encodeURIComponent(raw)}`);
        const page: Page = first ? await signInThrough(browser, start) : await browser.go(start);
        first = false;
        assert.equal(page.url, t().url(APPS), raw);
        assert.equal(page.status, 200, raw);
      }
    });

    test('a forged, replayed or foreign callback is a readable page, not a 500', async () => {
      const { t } = s;
      // no cookie at all
      const forged = await new Browser().go(t.url(`/account/signed-in?code=x&state=${'a'.repeat(43)}`));
      assert.equal(forged.status, 400);
      assert.match(forged.html, /Sign-in not completed/);

      // the real callback, caught, then used again (same browser) and in another browser
      const browser = new Browser();
      const login = await browser.go(t.url('/account/sign-in?return=/account/apps'));
      const callback = await browser.submit(findForm(login, '/login'), { username: 'alice', password: PASSWORD }, undefined, t.url('/account/signed-in'));
      const stolen = await new Browser().go(callback.url);
      assert.equal(stolen.status, 400, 'another browser has no state cookie');
      const used = await browser.go(callback.url);
      assert.equal(new URL(used.url).pathname, APPS);
      const replay = await browser.go(callback.url);
      assert.equal(replay.status, 400, 'replayed');
      assert.match(replay.html, /Sign-in not completed/);

      // the code was deleted: not even its record is left
      const code = new URL(callback.url).searchParams.get('code')!;
      assert.equal(await t.server.holder.provider.AuthorizationCode.find(code), undefined);
      // neither the code nor the state reaches the log
      const state = new URL(callback.url).searchParams.get('state')!;
      const logged = JSON.stringify(t.logs);
      assert.ok(!logged.includes(code) && !logged.includes(state), 'code and state not logged');

      // a state of this browser's cookie, but a different one in the URL
      const other = new Browser();
      await other.go(t.url('/account/sign-in'));
      const mismatch = await other.go(t.url(`/account/signed-in?code=x&state=${'b'.repeat(43)}`));
      assert.equal(mismatch.status, 400);
      const garbage = await other.go(t.url('/account/signed-in?state=%3Cscript%3E&state=2'));
      assert.equal(garbage.status, 400);
      assert.doesNotMatch(garbage.html, /<script>/);
    });

    test('cancelling the sign-in is a readable page', async () => {
      const browser = new Browser();
      const login = await browser.go(s.t.url('/account/sign-in'));
      const cancelled = await browser.submit(findForm(login, '/abort'));
      assert.equal(cancelled.status, 401);
      assert.match(cancelled.html, /Not signed in/);
    });

    test('the account client cannot be used for anything but a sign-in', async () => {
      const { t } = s;
      const redirect = t.url('/account/signed-in');
      const base = { client_id: ACCOUNT_CLIENT_ID, response_type: 'code', redirect_uri: redirect, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGMSFw-cM0', code_challenge_method: 'S256', state: 'x' };
      // an MCP server, or scopes beyond openid, are refused by the engine before any sign-in
      for (const extra of [{ scope: 'openid notes:read', resource: NOTES }, { scope: 'openid profile' }, { scope: 'openid', resource: NOTES }] as Record<string, string>[]) {
        const res = await fetch(t.url(`/auth?${new URLSearchParams({ ...base, ...extra })}`), { redirect: 'manual' });
        const location = res.headers.get('location') ?? '';
        assert.ok(res.status === 303 || res.status === 302, `${JSON.stringify(extra)}: ${res.status}`);
        assert.match(location, /[?&]error=(invalid_scope|invalid_target)/, JSON.stringify(extra));
      }
      // someone driving the public account client with a PKCE verifier of their own signs in and
      // catches the code: the token endpoint still refuses it (its grant was never stored)
      const verifier = randomBytes(32).toString('base64url');
      const browser = new Browser();
      const own = { ...base, scope: 'openid', code_challenge: createHash('sha256').update(verifier).digest('base64url') };
      const login = await browser.go(t.url(`/auth?${new URLSearchParams(own)}`));
      const callback = await browser.submit(findForm(login, '/login'), { username: 'alice', password: PASSWORD }, undefined, redirect);
      const code = new URL(callback.url).searchParams.get('code');
      assert.ok(code);
      const token = await fetch(t.url('/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', client_id: ACCOUNT_CLIENT_ID, code, redirect_uri: redirect, code_verifier: verifier }),
      });
      const answer = (await token.json()) as { error?: string; error_description?: string; access_token?: string };
      assert.equal(token.status, 400);
      assert.equal(answer.error, 'invalid_grant');
      assert.equal(answer.access_token, undefined);
      assert.ok(t.logs.some((l) => l.event === 'grant.error' && l.detail === 'grant not found'), 'refused because its grant does not exist');
      // another redirect URI: refused without a redirect
      const elsewhere = await fetch(t.url(`/auth?${new URLSearchParams({ ...base, scope: 'openid', redirect_uri: 'https://evil.com/cb' })}`), { redirect: 'manual' });
      assert.equal(elsewhere.status, 400);
    });

    test('an app allowed afterwards is listed; the account client never is', async () => {
      const { t } = s;
      const browser = new Browser();
      await signInThrough(browser, t.url('/account/sign-in'), 'bob');
      const { config, verifier, state, url } = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES });
      const callback = await authorize(browser, url, REDIRECT, PASSWORD, { username: 'bob' });
      await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
      const page = await browser.go(t.url(APPS));
      assert.equal((page.html.match(/class="resource connected-app"/g) ?? []).length, 1);
      assert.doesNotMatch(page.html, new RegExp(ACCOUNT_CLIENT_ID));
    });

    function t(): TestServer {
      return s.t;
    }
  });
}

describe('the account client in the configuration', () => {
  test('no configured client may take its id', () => {
    const fixture = fixtureConfig();
    const clients = [...(fixture.clients ?? []), { client_id: ACCOUNT_CLIENT_ID, redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'none' }];
    assert.throws(
      () => parseConfig({ ...fixture, issuer: 'https://as.example.com', clients } as never),
      (err: unknown) => err instanceof ConfigError && /account pages' own client/.test(err.message),
    );
  });
});

describe('the account sign-in under an issuer path', { timeout: 120_000 }, () => {
  const s = serverFixture('sqlite', { issuerPath: '/tenant', users: { alice: [] } });

  test('the link, the callback and the return path all live under the issuer path', async () => {
    const { t } = s;
    const browser = new Browser();
    const before = await browser.go(t.url(APPS));
    assert.equal(before.status, 401);
    const link = signInLink(before);
    assert.equal(new URL(link).pathname, '/tenant/account/sign-in');
    assert.equal(new URL(link).searchParams.get('return'), `/tenant${APPS}`);
    const callback = await (async () => {
      const login = await browser.go(link);
      return browser.submit(findForm(login, '/login'), { username: 'alice', password: PASSWORD }, undefined, t.url('/account/signed-in'));
    })();
    assert.equal(new URL(callback.url).pathname, '/tenant/account/signed-in');
    const after = await browser.go(callback.url);
    assert.equal(new URL(after.url).pathname, `/tenant${APPS}`);
    assert.equal(after.status, 200);
    // a path outside the issuer's is not returned to
    const outside = await browser.go(t.url(`/account/sign-in?return=${encodeURIComponent('/account/apps')}`));
    assert.equal(new URL(outside.url).pathname, `/tenant${APPS}`);
  });
});

describe('the account sign-in with a second factor', { timeout: 120_000 }, () => {
  const s = serverFixture('sqlite', { users: { carol: [] } });

  test('a person with an authenticator app is asked for its code, then lands on the page', async () => {
    const { t } = s;
    const { secret } = await enrolTotp(t, 'carol');
    const browser = new Browser();
    const before = await browser.go(t.url(SECURITY));
    const step = await signInThrough(browser, signInLink(before), 'carol');
    assert.ok(isSecondFactorPage(step), `the second-factor page, got ${step.url} (${step.status})`);
    const after = await browser.submit(findForm(step, '/second-factor'), { code: await codeOf(secret) });
    assert.equal(new URL(after.url).pathname, SECURITY);
    assert.equal(after.status, 200);
    assert.match(after.html, /carol/);
  });
});

describe('the account sign-in in headless Chromium', { timeout: 180_000 }, () => {
  let t: TestServer;
  let chromium: Chromium;
  before(async () => {
    [t, chromium] = await Promise.all([startServer({ store: 'sqlite', users: { alice: [] } }), launchBrowser()]);
  });
  after(async () => {
    await chromium?.close();
    await t?.stop();
  });

  test('connected apps → Sign in → password → connected apps, under the strict CSP', async () => {
    const context = await chromium.newContext();
    const page = await context.newPage();
    const csp = await collectCspViolations(page);
    const first = await page.goto(t.url(APPS));
    assert.equal(first?.status(), 401);
    await Promise.all([page.waitForNavigation(), page.click('a.sign-in-link')]);
    assert.match(page.url(), /\/interaction\//);
    await page.fill('#username', 'alice');
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === APPS), page.click('button:text("Sign in")')]);
    assert.match((await page.textContent('.account-name')) ?? '', /alice/);
    assert.deepEqual(csp, []);
    await context.close();
  });
});
