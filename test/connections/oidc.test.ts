/**
 * Sign-in through an upstream OpenID Provider, in headless Chromium, end to end: an MCP
 * client's request to us → our login page → the connection → the upstream's own sign-in (a
 * real oidc-provider, ./oidc-upstream.ts) → back to us → our consent page → our code → our
 * token. The person's roles come from their upstream groups at every sign-in; the upstream's
 * codes and tokens reach none of our tokens, logs, audit records or stored data; home-realm
 * discovery (an e-mail address, `login_hint`) goes straight to the upstream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { collectCspViolations, launchBrowser, type CspViolation } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { fixtureConfig, NOTES, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest, type AuthorizationRequest } from '../helpers/flows.js';
import { client, jwt } from '../helpers/rp.js';
import { accountIdFor } from '../../src/connections/provision.js';
import { startUpstream, UPSTREAM_SECRET, type Upstream } from './oidc-upstream.js';
import { auditRecords } from './oidc-flow.js';

const TIMEOUT = 180_000;

/** Every file under `dir`, as text (SQLite pages included: a token there would show). */
function everyFile(dir: string): string {
  let out = '';
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    out += statSync(path).isDirectory() ? everyFile(path) : readFileSync(path).toString('latin1');
  }
  return out;
}

const box = (page: Page, scope: string) => page.locator(`label.scope:has(.scope-name:text-is("${scope}")) input[type="checkbox"]`);

describe('sign-in through an upstream OpenID Provider, in headless Chromium', { timeout: TIMEOUT }, () => {
  let upstream: Upstream;
  let t: TestServer;
  let browser: Browser;
  /** every token of ours the tests received */
  const ourTokens: string[] = [];

  before(async () => {
    upstream = await startUpstream();
    upstream.people.set('ada-0001', { preferred_username: 'ada', email: 'ada@corp.example', email_verified: true, name: 'Ada <b>Lovelace</b>', groups: ['Finance', 'Staff'], amr: ['pwd', 'otp'] });
    const base = fixtureConfig();
    const [notes, ...others] = base.resources!;
    [t, browser] = await Promise.all([
      startServer({
        store: 'sqlite',
        config: {
          clients: base.clients!,
          resources: [{ ...notes!, scopes: { ...notes!.scopes, 'notes:ledger': { description: 'Read the ledger', allow: ['role:finance'] } } }, ...others],
          connections: [
            {
              kind: 'oidc',
              id: 'corp',
              name: 'Corp SSO',
              issuer: upstream.issuer,
              clientId: 'mcp-authz',
              clientSecret: UPSTREAM_SECRET,
              scopes: ['profile', 'email', 'groups'],
              domains: ['corp.example'],
              roles: { default: ['staff'], groups: { finance: ['finance'] } },
            },
          ],
        },
      }),
      launchBrowser(),
    ]);
    await upstream.register([t.url('/connections/corp/callback')]);
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
    await upstream?.stop();
  });

  const ours = (violations: CspViolation[]) => violations.filter((v) => v.url.startsWith(t.issuer));

  /** Our login page for a new request, in a new browser context; the page and what redeems its code. */
  async function open(params: Record<string, string> = {}) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const violations = await collectCspViolations(page);
    const request = await authorizationRequest(t, 'web-app', { scope: 'openid notes:read notes:ledger', resource: NOTES, ...params });
    await page.goto(request.url);
    return { context, page, violations, request };
  }

  async function signInUpstream(page: Page, login: string) {
    await page.waitForURL((u) => u.href.startsWith(`${upstream.issuer}/interaction/`));
    await page.fill('input[name="login"]', login);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(`${t.issuer}/interaction/`) && !u.pathname.includes('/connection/')), page.click('button:text("Sign in")')]);
    assert.equal(((await page.textContent('h1')) ?? '').trim(), 'Allow access?');
  }

  async function allow(page: Page, request: AuthorizationRequest) {
    const redirected = page.waitForRequest((r) => r.url().startsWith(REDIRECT));
    await page.click('button:text("Allow")');
    const callback = new URL((await redirected).url());
    const tokens = await client.authorizationCodeGrant(request.config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state }, { resource: NOTES });
    for (const token of [tokens.access_token, tokens.id_token, tokens.refresh_token]) if (token) ourTokens.push(token);
    return tokens;
  }

  test('request → our login page → the connection → the upstream → our consent → our token for the derived account, with the role its group gives', async () => {
    const { context, page, violations, request } = await open();
    try {
      assert.equal(await page.locator('a[data-connection="corp"]').textContent(), 'Corp SSO');
      await page.click('a[data-connection="corp"]');
      await signInUpstream(page, 'ada-0001');
      assert.equal(await box(page, 'notes:ledger').isDisabled(), false, 'the finance role (from the Finance group) allows it');
      await box(page, 'notes:ledger').check();
      const tokens = await allow(page, request);

      const access = jwt(tokens.access_token).payload;
      const id = accountIdFor('corp', 'ada-0001');
      assert.equal(access.sub, id, 'our subject is derived from connection and upstream subject');
      assert.notEqual(access.sub, 'ada-0001');
      assert.deepEqual(String(access.scope).split(' ').sort(), ['notes:ledger', 'notes:read']);
      assert.equal(jwt(tokens.id_token!).payload.sub, id);

      const account = await t.server.store.accounts.findById(id);
      assert.equal(account?.connection, 'corp');
      assert.equal(account?.username, 'ada');
      assert.equal(account?.email, 'ada@corp.example');
      assert.equal(account?.displayName, 'Ada <b>Lovelace</b>');
      assert.deepEqual([...(account?.roles ?? [])].sort(), ['finance', 'staff']);
      assert.equal(account?.passwordHash, '', 'no password: this person signs in upstream only');

      await t.server.audit.flush();
      const audit = auditRecords(t);
      assert.ok(audit.some((r) => r.event === 'account.provisioned' && r.details?.accountId === id && r.details?.connection === 'corp'));
      assert.ok(audit.some((r) => r.event === 'login.succeeded' && r.actor === id && r.details?.connection === 'corp' && r.details?.method === 'oidc'));
      assert.deepEqual(ours(violations), [], 'no CSP violation on our pages');
    } finally {
      await context.close();
    }
  });

  test('the same upstream person signs in to the same account again, with roles mapped anew: out of the group, the scope is not available', async () => {
    upstream.people.get('ada-0001')!.groups = ['Staff'];
    const { context, page, request } = await open();
    try {
      await page.click('a[data-connection="corp"]');
      await signInUpstream(page, 'ada-0001');
      assert.equal(await box(page, 'notes:ledger').isDisabled(), true, 'no finance role any more');
      const tokens = await allow(page, request);
      const access = jwt(tokens.access_token).payload;
      assert.equal(access.sub, accountIdFor('corp', 'ada-0001'));
      assert.equal(access.scope, 'notes:read');
      assert.deepEqual((await t.server.store.accounts.findById(accountIdFor('corp', 'ada-0001')))?.roles, ['staff']);
      assert.equal((await t.server.store.accounts.list()).filter((a) => a.connection === 'corp').length, 1, 'one account, not two');
    } finally {
      await context.close();
      upstream.people.get('ada-0001')!.groups = ['Finance', 'Staff'];
    }
  });

  test('home-realm discovery: an address on the connection’s domain typed on our login page, or given as login_hint, goes straight to the upstream, which is given it as login_hint', async () => {
    let { context, page, violations } = await open();
    try {
      await page.fill('#email', 'someone@corp.example');
      await page.click('button:text("Continue")');
      // the login page's CSP form-action lets the form's redirects end at the upstream
      await page.waitForURL((u) => u.href.startsWith(`${upstream.issuer}/interaction/`));
      assert.equal(await page.inputValue('input[name="login"]'), 'someone@corp.example', 'the address typed is passed on as login_hint');
      assert.deepEqual(ours(violations), []);
    } finally {
      await context.close();
    }
    ({ context, page } = await open({ login_hint: 'ada@CORP.example' }));
    try {
      assert.ok(page.url().startsWith(`${upstream.issuer}/interaction/`), `login_hint went to ${page.url()}`);
      assert.equal(await page.inputValue('input[name="login"]'), 'ada@CORP.example', 'and is passed on');
      await signInUpstream(page, 'ada-0001');
    } finally {
      await context.close();
    }
  });

  test('none of the upstream’s codes and tokens, nor our client secret there, is in our tokens, logs, audit records or stored data', async () => {
    assert.ok(upstream.secrets.length >= 6, `the upstream issued codes and tokens (${upstream.secrets.length})`);
    await t.server.audit.flush();
    const logs = JSON.stringify(t.logs);
    const stored = everyFile(t.dataDir);
    assert.ok(ourTokens.length >= 4);
    const decoded = JSON.stringify(ourTokens.filter((token) => token.split('.').length === 3).map((token) => jwt(token)));
    for (const secret of [...upstream.secrets, UPSTREAM_SECRET]) {
      assert.ok(!ourTokens.some((token) => token.includes(secret)) && !decoded.includes(secret), 'not in our tokens');
      assert.ok(!logs.includes(secret), 'not in the log');
      assert.ok(!stored.includes(secret), 'not in the data directory (store, audit files)');
    }
  });
});
