/**
 * The rendered pages in a real browser: hostile client-supplied strings stay text, the
 * strict CSP produces no violations (so nothing inline slipped in), the stylesheet
 * loads, pages fit a 360 px phone, and form_post auto-submits via its external script.
 * Plus plain-HTTP checks of the security headers, static files and CSRF tokens.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { get, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createRenderer, type ClientView, type PageData, type ViewName } from '../../src/http/render.js';
import { allowFormAction, buildCsp, formActionSourceFor, securityHeaders } from '../../src/http/security-headers.js';
import { staticFiles } from '../../src/http/static-files.js';
import { createCsrf, type Csrf } from '../../src/http/csrf.js';
import { collectCspViolations, launchBrowser } from '../helpers/browser.js';

// Compiled to dist/test/views/, the views live at the repository root.
const VIEWS_DIR = fileURLToPath(new URL('../../../views/', import.meta.url));

const XSS_NAME = '<script>alert(1)</script>';
const XSS_ATTR = '"><img src=x onerror=alert(1)>';

const hostileClient: ClientView = {
  id: 'dyn_8f3a2c',
  name: XSS_NAME,
  nameIsSelfAsserted: true,
  host: 'evil.example',
  redirectHost: 'evil.example',
};

const longUri = 'https://mcp.example.com/servers/a-rather-long-path-segment-that-could-overflow-a-phone-screen/mcp';

const hostileCall = {
  client: hostileClient,
  resource: { name: XSS_NAME, uri: longUri },
  tool: XSS_ATTR,
  summary: `Delete note '${XSS_NAME}'`,
  requested: { iso: '2026-11-24T12:00:00.000Z', text: '2026-11-24 12:00 UTC' },
  expires: { iso: '2026-11-24T12:05:00.000Z', text: '2026-11-24 12:05 UTC' },
};

type Sample = { [V in ViewName]: { view: V; data: PageData[V] } }[ViewName];

function samples(formPostAction: string): Record<string, Sample> {
  return {
    login: {
      view: 'login',
      data: {
        title: 'Sign in',
        action: '/submit/login',
        abortAction: '/submit/abort',
        local: true,
        discoverAction: '/submit/discover',
        connections: [
          { id: 'corp-oidc', name: XSS_ATTR, href: '/submit/connection/corp-oidc' },
          { id: 'corp-ldap', name: 'Corp directory', action: '/submit/connection/corp-ldap/login' },
        ],
        csrf: 'csrf-token-login',
        username: XSS_ATTR,
        error: 'Invalid username or password.',
        client: hostileClient,
        resource: { name: XSS_NAME, uri: longUri },
      },
    },
    consent: {
      view: 'consent',
      data: {
        title: 'Allow access?',
        action: '/submit/consent',
        abortAction: '/submit/abort',
        csrf: 'csrf-token-consent',
        account: { username: 'alice' },
        client: hostileClient,
        resources: [
          {
            name: 'Files server',
            uri: longUri,
            scopes: [
              { value: 'files:read', name: 'Read files', description: XSS_ATTR, dangerous: false, checked: true },
              {
                value: 'files:delete',
                name: 'Delete files',
                description: 'Permanently delete any of your files.',
                dangerous: true,
                checked: false,
              },
              {
                value: XSS_ATTR,
                name: 'Odd scope',
                description: 'A scope value that tries to break out of its attribute.',
                dangerous: false,
                checked: false,
                disabled: true,
                note: 'Your administrator does not allow this scope.',
              },
            ],
          },
          {
            name: 'Calendar',
            uri: 'https://calendar.example.com/mcp',
            scopes: [
              { value: 'calendar:read', name: 'Read calendar', description: 'See your events.', dangerous: false, checked: true },
            ],
          },
        ],
        lifetimes: { accessToken: '1 hour', refreshToken: '30 days' },
      },
    },
    'device-code': {
      view: 'device-code',
      data: { title: 'Connect a device', action: '/submit/device', xsrf: 'x1', userCode: XSS_ATTR, error: XSS_NAME },
    },
    'device-confirm': {
      view: 'device-confirm',
      data: {
        title: 'Connect this device?',
        action: '/submit/device',
        xsrf: 'x2',
        userCode: 'WDJB-MJHT',
        client: hostileClient,
        resources: [
          {
            name: 'Files server',
            uri: longUri,
            scopes: [
              { name: 'Read files', description: XSS_ATTR, dangerous: false },
              { name: 'Delete files', description: 'Permanently delete any of your files.', dangerous: true },
            ],
          },
        ],
      },
    },
    'device-done': { view: 'device-done', data: { title: 'Device connected', clientName: XSS_NAME, aborted: false } },
    'device-aborted': { view: 'device-done', data: { title: 'Cancelled', clientName: XSS_NAME, aborted: true } },
    logout: { view: 'logout', data: { title: 'Sign out', action: '/submit/logout', xsrf: 'x3', clientName: XSS_NAME } },
    'logged-out': { view: 'logged-out', data: { title: 'Signed out', clientName: XSS_NAME } },
    error: { view: 'error', data: { title: 'Something went wrong', message: XSS_NAME, requestId: 'req-123' } },
    'connected-apps': {
      view: 'connected-apps',
      data: {
        title: 'Connected apps',
        state: 'list',
        account: { username: XSS_NAME },
        csrf: 'csrf-token-apps',
        revokeAction: '/submit/revoke',
        revokeAllAction: '/submit/revoke-all',
        securityHref: '/account/security',
        pendingApprovals: [{ ...hostileCall, href: '/approvals/abcdefghijklmnopqrstuv' }],
        apps: [
          {
            grantId: 'grant-1',
            client: hostileClient,
            resources: [{ name: XSS_NAME, uri: longUri, scopes: [{ name: 'notes:delete', description: XSS_NAME, dangerous: true }] }],
            grantedAt: { iso: '2026-11-24T12:00:00.000Z', text: '2026-11-24 12:00 UTC' },
          },
        ],
      },
    },
    'tool-approval': {
      view: 'tool-approval',
      data: {
        title: 'Approve an action',
        state: 'decide',
        account: { username: XSS_ATTR },
        call: hostileCall,
        csrf: 'csrf-token-approval',
        action: '/submit/approval',
        askCode: true,
        passkey: { optionsAction: '/submit/passkey-options' },
        error: XSS_NAME,
        appsHref: '/account/apps',
      },
    },
    'tool-approval-done': {
      view: 'tool-approval',
      data: { title: 'Approve an action', state: 'approved', account: { username: XSS_NAME }, call: hostileCall, appsHref: '/account/apps' },
    },
    'second-factor': {
      view: 'second-factor',
      data: {
        title: 'Second step',
        state: 'verify',
        reason: 'sign-in',
        client: hostileClient,
        account: { username: XSS_ATTR },
        csrf: 'csrf-token-2fa',
        abortAction: '/submit/abort',
        action: '/submit/second-factor',
        totp: true,
        passkey: { optionsAction: '/submit/passkey/options', action: '/submit/passkey' },
        error: 'That code is not right.',
      },
    },
    'second-factor-enrol': {
      view: 'second-factor',
      data: {
        title: 'Confirm it is you',
        state: 'enrol',
        reason: 'step-up',
        client: hostileClient,
        account: { username: 'alice' },
        csrf: 'csrf-token-2fa',
        abortAction: '/submit/abort',
        action: '/submit/second-factor',
        skipAction: '/submit/skip',
        secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
        uri: `otpauth://totp/mcp-authz:${encodeURIComponent(XSS_ATTR)}?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=mcp-authz`,
      },
    },
    'second-factor-codes': {
      view: 'second-factor',
      data: {
        title: 'Second step',
        state: 'recovery-codes',
        reason: 'sign-in',
        client: hostileClient,
        account: { username: 'alice' },
        csrf: 'csrf-token-2fa',
        abortAction: '/submit/abort',
        codes: ['abcd-efgh-jkmn', 'pqrs-tuvw-xyz2', XSS_ATTR],
        continueAction: '/submit/continue',
      },
    },
    'account-security': {
      view: 'account-security',
      data: {
        title: 'Sign-in security',
        state: 'overview',
        account: { username: XSS_NAME },
        csrf: 'csrf-token-security',
        notice: 'Your passkey was added.',
        error: 'That code is not right.',
        fresh: true,
        totp: { enrolledAt: { iso: '2026-11-24T12:00:00.000Z', text: '2026-11-24 12:00 UTC' } },
        passkeys: [{ id: 'cred-1', name: XSS_ATTR, createdAt: { iso: '2026-11-24T12:00:00.000Z', text: '2026-11-24 12:00 UTC' } }],
        recoveryCodesLeft: 7,
        passkeysOffered: true,
        appsHref: '/account/apps',
        actions: {
          totpSetup: '/submit/totp',
          totpRemove: '/submit/totp/remove',
          recoveryCodes: '/submit/recovery-codes',
          passkeyOptions: '/submit/passkeys/options',
          passkeyAdd: '/submit/passkeys',
          passkeyRemove: '/submit/passkeys/remove',
          verify: '/submit/verify',
          verifyPasskeyOptions: '/submit/verify/passkey/options',
          verifyPasskey: '/submit/verify/passkey',
        },
      },
    },
    'account-security-verify': {
      view: 'account-security',
      data: {
        title: 'Sign-in security',
        state: 'overview',
        account: { username: XSS_ATTR },
        csrf: 'csrf-token-security',
        fresh: false,
        passkeys: [{ id: 'cred-1', name: XSS_NAME, createdAt: { iso: '2026-11-24T12:00:00.000Z', text: '2026-11-24 12:00 UTC' } }],
        recoveryCodesLeft: 1,
        passkeysOffered: true,
        appsHref: '/account/apps',
        actions: {
          totpSetup: '/submit/totp',
          totpRemove: '/submit/totp/remove',
          recoveryCodes: '/submit/recovery-codes',
          passkeyOptions: '/submit/passkeys/options',
          passkeyAdd: '/submit/passkeys',
          passkeyRemove: '/submit/passkeys/remove',
          verify: '/submit/verify',
          verifyPasskeyOptions: '/submit/verify/passkey/options',
          verifyPasskey: '/submit/verify/passkey',
        },
      },
    },
    'account-security-setup': {
      view: 'account-security',
      data: {
        title: 'Set up an authenticator app',
        state: 'totp-setup',
        account: { username: XSS_NAME },
        csrf: 'csrf-token-security',
        action: '/submit/totp',
        secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
        uri: 'otpauth://totp/mcp-authz:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=mcp-authz',
        backHref: '/account/security',
        error: 'That code is not right.',
      },
    },
    'account-security-codes': {
      view: 'account-security',
      data: { title: 'Your recovery codes', state: 'recovery-codes', account: { username: XSS_NAME }, codes: ['abcd-efgh-jkmn', 'pqrs-tuvw-xyz2'], backHref: '/account/security' },
    },
    'form-post': {
      view: 'form-post',
      data: {
        title: 'Continue',
        action: formPostAction,
        fields: [
          { name: 'code', value: XSS_ATTR },
          { name: 'state', value: 'st<ate>' },
        ],
      },
    },
  };
}

/** Every page that can be loaded in the browser and must not auto-navigate. */
const STATIC_PAGES = [
  'login',
  'consent',
  'device-code',
  'device-confirm',
  'device-done',
  'device-aborted',
  'logout',
  'logged-out',
  'error',
  'connected-apps',
  'tool-approval',
  'tool-approval-done',
  'second-factor',
  'second-factor-enrol',
  'second-factor-codes',
  'account-security',
  'account-security-verify',
  'account-security-setup',
  'account-security-codes',
];

async function readBody(ctx: Koa.Context): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface TestServer {
  base: string;
  /** Same server under another origin (localhost vs 127.0.0.1), for form-action tests. */
  otherOrigin: string;
  received: Array<Record<string, string>>;
  close(): Promise<void>;
}

async function startServer(csrf: Csrf): Promise<TestServer> {
  const render = createRenderer({ viewsDir: VIEWS_DIR, cache: true });
  const received: Array<Record<string, string>> = [];
  const app = new Koa();
  app.silent = true;
  let port = 0;

  app.use(securityHeaders({ hsts: false }));
  app.use(staticFiles({ dir: `${VIEWS_DIR}static`, prefix: '/static' }));
  app.use(async (ctx) => {
    const otherOrigin = `http://localhost:${port}`;
    const pages = samples(`${otherOrigin}/cb`);
    if (ctx.method === 'GET' && ctx.path.startsWith('/page/')) {
      const name = ctx.path.slice('/page/'.length);
      const sample = pages[name];
      if (!sample) return ctx.throw(404);
      if (sample.view === 'form-post') allowFormAction(ctx, sample.data.action);
      render(ctx, sample.view, sample.data as never);
      return;
    }
    if (ctx.method === 'GET' && ctx.path === '/form-post-unallowed') {
      const sample = pages['form-post'];
      assert.ok(sample);
      render(ctx, sample.view, sample.data as never);
      return;
    }
    if (ctx.method === 'POST' && ctx.path === '/cb') {
      received.push(Object.fromEntries(new URLSearchParams(await readBody(ctx))));
      ctx.type = 'text/plain';
      ctx.body = 'received';
      return;
    }
    if (ctx.method === 'GET' && ctx.path === '/boom') {
      ctx.set('X-Powered-By', 'something');
      throw new Error('kaboom');
    }
    if (ctx.method === 'GET' && ctx.path === '/powered') {
      ctx.set('X-Powered-By', 'something');
      ctx.body = 'ok';
      return;
    }
    if (ctx.method === 'GET' && ctx.path === '/csrf/issue') {
      const purpose = String(ctx.query.purpose ?? '');
      // Two forms on one page: both tokens must come from the same cookie.
      const first = csrf.issue(ctx, purpose);
      const second = csrf.issue(ctx, `${purpose}:second`);
      ctx.body = { token: first, second };
      return;
    }
    if (ctx.method === 'POST' && ctx.path === '/csrf/verify') {
      const { purpose, token } = JSON.parse(await readBody(ctx)) as { purpose: string; token: unknown };
      ctx.body = { ok: csrf.verify(ctx, purpose, token) };
      return;
    }
    ctx.throw(404);
  });

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    otherOrigin: `http://localhost:${port}`,
    received,
    close: () => new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}

interface Opened {
  context: BrowserContext;
  page: Page;
  dialogs: string[];
  violations: Awaited<ReturnType<typeof collectCspViolations>>;
}

async function open(browser: Browser, width = 360, height = 740): Promise<Opened> {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  const violations = await collectCspViolations(page);
  return { context, page, dialogs, violations };
}

const csrf = createCsrf({ key: Buffer.alloc(32, 7), secureCookies: false });
let server: TestServer;
let browser: Browser;

before(async () => {
  server = await startServer(csrf);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

describe('pages in headless Chromium', () => {
  for (const name of STATIC_PAGES) {
    it(`${name}: escapes hostile text, no CSP violations, styled, fits 360 px`, async () => {
      const { context, page, dialogs, violations } = await open(browser);
      try {
        const response = await page.goto(`${server.base}/page/${name}`, { waitUntil: 'load' });
        assert.equal(response?.status(), 200);
        // Give a would-be injected handler (img onerror) a chance to run.
        await page.waitForTimeout(100);

        assert.deepEqual(dialogs, [], 'no dialog may fire');
        assert.deepEqual(violations, [], 'no CSP violations');
        assert.equal(await page.locator('img, script:not([src])').count(), 0, 'no injected elements');

        const text = (await page.textContent('body')) ?? '';
        assert.ok(text.includes('mcp-authz'), 'footer names the product');
        if (name !== 'device-confirm') {
          assert.ok(text.includes(XSS_NAME) || text.includes(XSS_ATTR), 'hostile string is shown as text');
        }
        assert.equal(await page.evaluate('document.documentElement.lang'), 'en');

        const background = await page.evaluate('getComputedStyle(document.body).backgroundColor');
        assert.notEqual(background, 'rgba(0, 0, 0, 0)', 'stylesheet applied');
        const scrollWidth = await page.evaluate('document.documentElement.scrollWidth');
        assert.ok(Number(scrollWidth) <= 360, `fits 360 px (scrollWidth ${String(scrollWidth)})`);
      } finally {
        await context.close();
      }
    });
  }

  it('login: hostile values stay text and in attributes; forms carry CSRF', async () => {
    const { context, page, dialogs, violations } = await open(browser);
    try {
      await page.goto(`${server.base}/page/login`);
      await page.screenshot({ path: '/tmp/login.png', fullPage: true });
      assert.equal(await page.inputValue('#username'), XSS_ATTR);
      assert.equal(await page.getAttribute('#password', 'type'), 'password');
      assert.equal(await page.getAttribute('#password', 'autocomplete'), 'current-password');
      // sign-in, home-realm discovery, the directory connection's folded form, cancel
      assert.equal(await page.locator('form').count(), 4);
      assert.equal(await page.locator('form[method="post"] input[type="hidden"][name="csrf"]').count(), 4);
      // connections: the upstream one a link whose hostile name is text, the directory one folded
      assert.equal(await page.textContent('a[data-connection="corp-oidc"]'), XSS_ATTR);
      assert.equal(await page.getAttribute('a[data-connection="corp-oidc"]', 'href'), '/submit/connection/corp-oidc');
      assert.equal(await page.getAttribute('details[data-connection="corp-ldap"] form', 'action'), '/submit/connection/corp-ldap/login');
      const lead = (await page.textContent('.lead')) ?? '';
      assert.match(lead, /Sign in to continue to <script>alert\(1\)<\/script> \(name given by the app, not verified\)/);
      assert.deepEqual(dialogs, []);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  it("a person's own pages link to each other: connected apps ↔ sign-in security", async () => {
    const { context, page } = await open(browser);
    try {
      await page.goto(`${server.base}/page/connected-apps`);
      assert.equal(await page.getAttribute('a.security-link', 'href'), '/account/security');
      await page.goto(`${server.base}/page/account-security`);
      assert.equal(await page.getAttribute('a.apps-link', 'href'), '/account/apps');
    } finally {
      await context.close();
    }
  });

  it('consent: who, where, what, how long; dangerous scopes marked; Allow/Deny forms', async () => {
    const { context, page, violations } = await open(browser, 390, 844);
    try {
      await page.goto(`${server.base}/page/consent`);
      await page.screenshot({ path: '/tmp/consent.png', fullPage: true });
      const text = (await page.textContent('main')) ?? '';
      for (const expected of [
        '(name given by the app, not verified)',
        'dyn_8f3a2c',
        'evil.example',
        'you will be sent back to evil.example',
        'Files server',
        longUri,
        'https://calendar.example.com/mcp',
        XSS_ATTR,
        '1 hour',
        '30 days',
        'Signed in as alice',
      ]) {
        assert.ok(text.includes(expected), `consent shows ${expected}`);
      }
      const boxes = page.locator('input[type="checkbox"][name="scope"]');
      assert.equal(await boxes.count(), 4);
      assert.equal(await page.isChecked('input[value="files:read"]'), true);
      assert.equal(await page.isChecked('input[value="files:delete"]'), false);
      assert.equal(await page.locator('input[name="scope"]').nth(2).getAttribute('value'), XSS_ATTR);
      assert.equal(await page.locator('input[name="scope"]').nth(2).isDisabled(), true);
      const dangerous = page.locator('.scope.dangerous');
      assert.equal(await dangerous.count(), 1);
      assert.match((await dangerous.textContent()) ?? '', /⚠/);
      const dangerBg = await dangerous.evaluate('(el) => getComputedStyle(el).backgroundColor');
      assert.notEqual(dangerBg, 'rgba(0, 0, 0, 0)', 'dangerous scope is visibly styled');
      assert.equal(await page.getAttribute('form:has(button:text("Allow"))', 'action'), '/submit/consent');
      assert.equal(await page.getAttribute('form:has(button:text("Deny"))', 'action'), '/submit/abort');
      assert.equal(await page.locator('form input[type="hidden"][name="csrf"]').count(), 2);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  it('device pages: code input attributes and confirm buttons', async () => {
    const { context, page } = await open(browser);
    try {
      await page.goto(`${server.base}/page/device-code`);
      const input = page.locator('input[name="user_code"]');
      assert.equal(await input.inputValue(), XSS_ATTR);
      assert.equal(await input.getAttribute('autocomplete'), 'off');
      assert.equal(await input.getAttribute('autocapitalize'), 'characters');
      assert.equal(await input.getAttribute('spellcheck'), 'false');
      assert.equal(await input.getAttribute('inputmode'), 'text');
      assert.equal(await page.locator('input[type="hidden"][name="xsrf"]').count(), 1);
      assert.match((await page.textContent('main')) ?? '', /Enter the code shown on your device/);

      await page.goto(`${server.base}/page/device-confirm`);
      await page.screenshot({ path: '/tmp/device-confirm.png', fullPage: true });
      const main = (await page.textContent('main')) ?? '';
      assert.ok(main.includes('WDJB-MJHT'));
      assert.ok(main.includes(XSS_NAME));
      assert.ok(main.includes('Only continue if you started this on your own device and the code matches'));
      assert.equal(await page.inputValue('input[type="hidden"][name="user_code"]'), 'WDJB-MJHT');
      assert.equal(await page.locator('button[name="confirm"][value="yes"]').count(), 1);
      assert.equal(await page.locator('button[name="abort"][value="yes"]').count(), 1);
    } finally {
      await context.close();
    }
  });

  it('logout: sign-out and stay buttons in one CSRF-protected form', async () => {
    const { context, page } = await open(browser);
    try {
      await page.goto(`${server.base}/page/logout`);
      assert.equal(await page.locator('button[name="logout"][value="yes"]').count(), 1);
      assert.equal(await page.locator('button:text("Stay signed in"):not([name])').count(), 1);
      assert.equal(await page.inputValue('input[type="hidden"][name="xsrf"]'), 'x3');
    } finally {
      await context.close();
    }
  });

  it('form-post: auto-submits through the external script to an allowed origin', async () => {
    const { context, page, dialogs, violations } = await open(browser);
    try {
      server.received.length = 0;
      await page.goto(`${server.base}/page/form-post`, { waitUntil: 'commit' });
      await page.waitForURL(`${server.otherOrigin}/cb`, { timeout: 10_000 });
      assert.deepEqual(server.received, [{ code: XSS_ATTR, state: 'st<ate>' }]);
      assert.deepEqual(dialogs, []);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  it('form-post without allowFormAction is blocked by CSP (the collector sees it)', async () => {
    const { context, page, violations } = await open(browser);
    try {
      server.received.length = 0;
      await page.goto(`${server.base}/form-post-unallowed`, { waitUntil: 'commit' });
      await page.waitForTimeout(1000);
      assert.deepEqual(server.received, []);
      assert.ok(violations.length > 0, 'a form-action violation is reported');
    } finally {
      await context.close();
    }
  });
});

describe('security headers', () => {
  const expectedCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; " +
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

  it('every page carries the strict headers and no-store', async () => {
    for (const name of [...STATIC_PAGES, 'form-post']) {
      const res = await fetch(`${server.base}/page/${name}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin');
      assert.match(res.headers.get('permissions-policy') ?? '', /camera=\(\).*geolocation=\(\).*microphone=\(\)/);
      // passkeys: WebAuthn on our own pages only
      assert.match(res.headers.get('permissions-policy') ?? '', /publickey-credentials-create=\(self\), publickey-credentials-get=\(self\)/);
      assert.equal(res.headers.get('strict-transport-security'), null);
      const csp = res.headers.get('content-security-policy');
      if (name === 'form-post') {
        assert.equal(csp, expectedCsp.replace("form-action 'self'", `form-action 'self' ${server.otherOrigin}`));
      } else {
        assert.equal(csp, expectedCsp);
      }
      const html = await res.text();
      assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
      assert.doesNotMatch(html, /<script>|<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script');
      // Look inside tags only, with attribute values blanked (escaped text may mention "onerror=").
      const tags = html.replace(/"[^"]*"/g, '""').match(/<[a-z][^<>]*>/gi) ?? [];
      for (const tag of tags) assert.doesNotMatch(tag, /\sstyle=|\son[a-z]+\s*=/i, tag);
      assert.doesNotMatch(html, /<style/i, 'no inline style element');
      assert.ok(!html.includes(XSS_NAME), 'raw hostile markup never reaches the HTML');
      assert.equal(html.includes('/static/form-post.js'), name === 'form-post');
      assert.equal(html.includes('/static/passkeys.js'), ['second-factor', 'account-security', 'account-security-verify', 'tool-approval'].includes(name), 'the passkey script only where a passkey form is');
    }
  });

  it('headers are present on thrown errors and on 404s; X-Powered-By removed', async () => {
    for (const path of ['/boom', '/nope', '/powered']) {
      const res = await fetch(`${server.base}${path}`);
      assert.equal(res.headers.get('content-security-policy'), expectedCsp, path);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(res.headers.get('x-powered-by'), null, path);
    }
    assert.equal((await fetch(`${server.base}/boom`)).status, 500);
  });

  it('JSON (the OAuth endpoints) gets the short set an API answer needs, not the page policy', async () => {
    const app = new Koa();
    app.use(securityHeaders({ hsts: true }));
    app.use((ctx) => {
      ctx.body = { access_token: 'x' };
    });
    const s: Server = await new Promise((resolve) => {
      const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
    });
    try {
      const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000; includeSubDomains');
      assert.equal(res.headers.get('permissions-policy'), null);
    } finally {
      await new Promise((resolve) => s.close(resolve));
    }
  });

  it('HSTS only when enabled', async () => {
    const app = new Koa();
    app.use(securityHeaders({ hsts: true }));
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    const s: Server = await new Promise((resolve) => {
      const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
    });
    try {
      const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/`);
      assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000; includeSubDomains');
    } finally {
      await new Promise((resolve) => s.close(resolve));
    }
  });

  it('form-action sources: origin for http(s), scheme for custom schemes, junk ignored', () => {
    assert.equal(formActionSourceFor('https://app.example.com:8443/cb?x=1'), 'https://app.example.com:8443');
    assert.equal(formActionSourceFor('http://127.0.0.1:3000/callback'), 'http://127.0.0.1:3000');
    assert.equal(formActionSourceFor('com.example.app:/cb'), 'com.example.app:');
    assert.equal(formActionSourceFor('not a url'), undefined);
    assert.equal(formActionSourceFor(''), undefined);
    const ctx = { state: {} } as unknown as Koa.Context;
    allowFormAction(ctx, 'https://a.example/cb');
    allowFormAction(ctx, 'https://a.example/other');
    allowFormAction(ctx, 'com.example.app:/cb');
    allowFormAction(ctx, '::::');
    assert.deepEqual(ctx.state.formActionSources, ['https://a.example', 'com.example.app:']);
    assert.match(buildCsp(ctx.state.formActionSources as string[]), /form-action 'self' https:\/\/a\.example com\.example\.app:;/);
    assert.match(buildCsp(["x; script-src *"]), /form-action 'self';/, 'injection attempts are dropped');
  });
});

describe('static files', () => {
  it('serves known assets with caching headers and ETag', async () => {
    const res = await fetch(`${server.base}/static/app.css`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'public, max-age=3600');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const etag = res.headers.get('etag');
    assert.ok(etag);
    assert.equal(await res.text(), readFileSync(`${VIEWS_DIR}static/app.css`, 'utf8'));
    // node:http, not fetch: fetch turns a conditional request into Cache-Control: no-cache.
    const again = await new Promise<number | undefined>((resolve, reject) => {
      get(`${server.base}/static/app.css`, { headers: { 'If-None-Match': etag } }, (r) => {
        r.resume();
        resolve(r.statusCode);
      }).on('error', reject);
    });
    assert.equal(again, 304);
    const js = await fetch(`${server.base}/static/form-post.js`);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  });

  it('anything else under the prefix is 404; non-GET is rejected', async () => {
    for (const path of ['/static/nope.css', '/static/%2e%2e/package.json', '/static/..%2fpackage.json', '/static/', '/static']) {
      const res = await fetch(`${server.base}${path}`);
      assert.equal(res.status, 404, path);
    }
    const post = await fetch(`${server.base}/static/app.css`, { method: 'POST' });
    assert.equal(post.status, 405);
  });
});

describe('CSRF', () => {
  async function issue(purpose: string): Promise<{ token: string; second: string; cookie: string; setCookies: string[] }> {
    const res = await fetch(`${server.base}/csrf/issue?purpose=${encodeURIComponent(purpose)}`);
    const setCookies = res.headers.getSetCookie();
    const { token, second } = (await res.json()) as { token: string; second: string };
    const cookie = (setCookies[0] ?? '').split(';')[0] ?? '';
    return { token, second, cookie, setCookies };
  }

  async function verify(purpose: string, token: unknown, cookie?: string): Promise<boolean> {
    const res = await fetch(`${server.base}/csrf/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
      body: JSON.stringify({ purpose, token }),
    });
    return ((await res.json()) as { ok: boolean }).ok;
  }

  it('issues one httpOnly SameSite=Lax cookie per request and tokens verify', async () => {
    const { token, second, cookie, setCookies } = await issue('login:abc');
    assert.equal(setCookies.length, 1);
    assert.match(setCookies[0] ?? '', /^mcp-authz\.csrf=[A-Za-z0-9_-]{43}; path=\/; samesite=lax; httponly$/);
    assert.equal(await verify('login:abc', token, cookie), true);
    assert.equal(await verify('login:abc:second', second, cookie), true);
  });

  it('rejects wrong purpose, tampered token, missing cookie, other cookie, non-string', async () => {
    const { token, cookie } = await issue('login:abc');
    assert.equal(await verify('login:other', token, cookie), false);
    const tampered = (token[0] === 'A' ? 'B' : 'A') + token.slice(1);
    assert.equal(await verify('login:abc', tampered, cookie), false);
    assert.equal(await verify('login:abc', `${token}A`, cookie), false);
    assert.equal(await verify('login:abc', token.slice(0, -1), cookie), false);
    assert.equal(await verify('login:abc', token), false);
    const other = await issue('login:abc');
    assert.equal(await verify('login:abc', token, other.cookie), false);
    assert.equal(await verify('login:abc', 42, cookie), false);
    assert.equal(await verify('login:abc', [token], cookie), false);
    assert.equal(await verify('login:abc', '', cookie), false);
  });

  it('reuses an existing cookie and uses the __Host- name with Secure behind HTTPS', async () => {
    const { cookie } = await issue('x');
    const res = await fetch(`${server.base}/csrf/issue?purpose=x`, { headers: { cookie } });
    assert.deepEqual(res.headers.getSetCookie(), []);

    const secure = createCsrf({ key: Buffer.alloc(32, 9), secureCookies: true });
    assert.equal(secure.cookieName, '__Host-mcp-authz.csrf');
    const app = new Koa();
    app.proxy = true;
    app.use((ctx) => {
      ctx.body = { token: secure.issue(ctx, 'p') };
    });
    const s: Server = await new Promise((resolve) => {
      const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
    });
    try {
      const r = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/`, {
        headers: { 'x-forwarded-proto': 'https' },
      });
      assert.match(r.headers.getSetCookie()[0] ?? '', /^__Host-mcp-authz\.csrf=[^;]+; path=\/; samesite=lax; secure; httponly$/);
    } finally {
      await new Promise((resolve) => s.close(resolve));
    }
  });

  it('refuses short keys', () => {
    assert.throws(() => createCsrf({ key: Buffer.alloc(16), secureCookies: false }));
  });
});

describe('templates', () => {
  it('use no raw output except the layout inserting the rendered body', () => {
    for (const file of readdirSync(VIEWS_DIR).filter((f) => f.endsWith('.eta'))) {
      const source = readFileSync(`${VIEWS_DIR}${file}`, 'utf8');
      const raw = source.match(/<%~[^%]*%>/g) ?? [];
      assert.deepEqual(raw, file === 'layout.eta' ? ['<%~ it.body %>'] : [], file);
      assert.doesNotMatch(source, /\sstyle=|<style|\son[a-z]+=|<script>/i, file);
      if (file !== 'layout.eta') assert.match(source, /^<% layout\('\.\/layout'/, file);
    }
  });
});
