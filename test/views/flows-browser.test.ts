/**
 * The real flows as a person lives them: headless Chromium against the real server (SQLite),
 * filling and clicking on our pages. Authorization code + PKCE with openid-client on both
 * ends, a hostile client name, a wrong password, the device flow, the framing and CSRF
 * protections, and the pages on a 390 px phone (screenshots in /tmp/e2e-*.png).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { collectCspViolations, launchBrowser, type CspViolation } from '../helpers/browser.js';
import { serverFixture } from '../helpers/harness.js';
import { NOTES, PASSWORD, REDIRECT } from '../helpers/fixtures.js';
import { client, jwt } from '../helpers/rp.js';
import { authorizationRequest, pollDevice, startDevice } from '../helpers/flows.js';

const XSS_NAME = '<script>alert(1)</script>';
const GENERIC_LOGIN_ERROR = 'Incorrect username or password.';

interface Opened {
  context: BrowserContext;
  page: Page;
  dialogs: string[];
  violations: CspViolation[];
  /** every HTML document the server answered in this page (our pages, error pages included) */
  documents: Response[];
}

/** A second origin (127.0.0.1, another port): a page that frames ours, a forged cross-origin form. */
interface Attacker {
  base: string;
  close(): Promise<void>;
}

const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

async function startAttacker(): Promise<Attacker> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const target = url.searchParams.get('target') ?? '';
    res.setHeader('content-type', 'text/html; charset=utf-8');
    if (url.pathname === '/frame') {
      res.end(`<!doctype html><title>framer</title><h1>Totally legit</h1><iframe id="victim" width="600" height="600" src="${attr(target)}"></iframe>`);
    } else if (url.pathname === '/forge') {
      res.end(
        `<!doctype html><title>forger</title><form method="post" action="${attr(target)}">` +
          '<input name="csrf" value="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA">' +
          `<input name="username" value="alice"><input name="password" value="${attr(PASSWORD)}">` +
          '<button type="submit" id="go">Win a prize</button></form>',
      );
    } else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}


/** Clicks `selector` and waits for the document it leads to; returns its (last) response. */
async function clickAndWait(page: Page, selector: string): Promise<Response | null> {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
  return response;
}

async function heading(page: Page): Promise<string> {
  return ((await page.textContent('h1')) ?? '').trim();
}

async function mainText(page: Page): Promise<string> {
  return ((await page.textContent('main')) ?? '').replace(/\s+/g, ' ');
}

async function signIn(page: Page, username = 'alice', password = PASSWORD): Promise<Response | null> {
  await page.fill('#username', username);
  await page.fill('#password', password);
  return clickAndWait(page, 'button:text("Sign in")');
}

async function scrollWidth(page: Page): Promise<number> {
  return Number(await page.evaluate('document.documentElement.scrollWidth'));
}

/**
 * Clicks Allow and returns the redirect to the client. Nothing listens on 127.0.0.1:9, so
 * the request is observed rather than routed; then the browser's own error page is awaited,
 * so a later navigation is not interrupted by it.
 */
async function allowAndCaptureRedirect(page: Page): Promise<URL> {
  const redirected = page.waitForRequest((r) => r.url().startsWith(REDIRECT));
  await page.click('button:text("Allow")');
  const callback = new URL((await redirected).url());
  await page.waitForURL((u) => u.protocol === 'chrome-error:');
  return callback;
}

const scopeBox = (page: Page, scope: string) => page.locator(`label.scope:has(.scope-name:text-is("${scope}")) input[type="checkbox"]`);

describe('flows in headless Chromium (sqlite)', () => {
  const s = serverFixture('sqlite');
  let browser: Browser;
  let attacker: Attacker;

  before(async () => {
    browser = await launchBrowser();
    attacker = await startAttacker();
  });

  after(async () => {
    await browser?.close();
    await attacker?.close();
  });

  async function open(width = 1280, height = 900): Promise<Opened> {
    const context = await browser.newContext({ viewport: { width, height } });
    context.setDefaultTimeout(10_000);
    context.setDefaultNavigationTimeout(10_000);
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    const violations = await collectCspViolations(page);
    const documents: Response[] = [];
    page.on('response', (response) => {
      if (response.url().startsWith(s.t.issuer) && (response.headers()['content-type'] ?? '').startsWith('text/html')) documents.push(response);
    });
    return { context, page, dialogs, violations, documents };
  }

  it('response_mode=form_post: our page posts the code to the client by its external script, under the strict CSP', async () => {
    const { context, page, violations, documents } = await open();
    try {
      const { config, verifier, state, url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read', resource: NOTES, response_mode: 'form_post' });
      await page.goto(url);
      await signIn(page);
      assert.equal(await heading(page), 'Allow access?');
      // Allow answers with the auto-submitting page, which posts to the redirect URI (nothing listens there)
      const posted = page.waitForRequest((r) => r.url().startsWith(REDIRECT) && r.method() === 'POST');
      await page.click('button:text("Allow")');
      const request = await posted;
      const fields = new URLSearchParams(request.postData() ?? '');
      assert.equal(fields.get('state'), state);
      assert.equal(fields.get('iss'), s.t.issuer);
      assert.ok(fields.get('code'), 'the code is posted');
      assert.equal(request.headers()['content-type'], 'application/x-www-form-urlencoded');

      // the page is the answer to the resumed authorization request
      const formPage = documents.find((d) => new URL(d.url()).pathname.startsWith('/auth/') && d.status() === 200);
      assert.ok(formPage, 'the auto-submitting page was served');
      const csp = formPage.headers()['content-security-policy'] ?? '';
      assert.match(csp, /script-src 'self'(;|$)/, `no inline script allowed: ${csp}`);
      assert.ok(!csp.includes('unsafe-inline') && !csp.includes('sha256-'), csp);
      assert.match(csp, /form-action 'self' http:\/\/127\.0\.0\.1:9/);
      assert.deepEqual(violations, [], 'no CSP violation: the page ran only our external script');

      const callback = new URL(REDIRECT);
      for (const [name, value] of fields) callback.searchParams.set(name, value);
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
      assert.equal(jwt(tokens.access_token).payload.aud, NOTES);
    } finally {
      await context.close();
    }
  });

  it('authorization code + PKCE: sign in, read the consent page, untick a scope, get only what was ticked', async () => {
    const { context, page, dialogs, violations } = await open();
    try {
      const { config, verifier, state, url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read notes:write notes:delete', resource: NOTES });
      const first = await page.goto(url);
      assert.equal(first?.status(), 200);
      assert.match(new URL(page.url()).pathname, /^\/interaction\/[A-Za-z0-9_-]+$/);
      assert.equal(await heading(page), 'Sign in');
      const login = await mainText(page);
      assert.ok(login.includes('Sign in to continue to Web App (name given by the app, not verified)'), login);
      assert.ok(login.includes('Notes') && login.includes(NOTES), 'the login page names the MCP server');

      const consentResponse = await signIn(page);
      assert.equal(consentResponse?.status(), 200);
      assert.equal(await heading(page), 'Allow access?');
      const text = await mainText(page);
      for (const expected of [
        'Signed in as alice',
        'Web App',
        '(name given by the app, not verified)',
        'web-app',
        'registered by your administrator',
        'you will be sent back to 127.0.0.1:9',
        'Notes',
        `MCP server at ${NOTES}`,
        'Read your notes',
        'Create and edit notes',
        'Delete notes',
        'Sensitive permission',
        'Each access lasts 10 minutes',
        'up to 14 days',
      ]) {
        assert.ok(text.includes(expected), `consent shows "${expected}": ${text}`);
      }
      assert.equal((await page.textContent('.client-name'))?.trim(), 'Web App');
      assert.equal((await page.textContent('legend.resource-name'))?.trim(), 'Notes');
      assert.equal((await page.textContent('.resource-uri code'))?.trim(), NOTES);

      assert.equal(await scopeBox(page, 'notes:read').isChecked(), true, 'notes:read preselected');
      assert.equal(await scopeBox(page, 'notes:write').isChecked(), true, 'notes:write preselected');
      assert.equal(await scopeBox(page, 'notes:delete').isChecked(), false, 'the dangerous scope is not preselected');
      assert.equal(await page.locator('label.scope.dangerous .scope-name').textContent(), 'notes:delete');

      await scopeBox(page, 'notes:write').uncheck();
      assert.equal(await scopeBox(page, 'notes:write').isChecked(), false);

      const callback = await allowAndCaptureRedirect(page);
      assert.equal(callback.searchParams.get('iss'), s.t.issuer);
      assert.equal(callback.searchParams.get('state'), state);
      assert.ok(callback.searchParams.get('code'));

      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
      const at = jwt(tokens.access_token);
      assert.equal(at.header.typ, 'at+jwt');
      assert.equal(at.payload.aud, NOTES);
      assert.equal(at.payload.scope, 'notes:read', 'exactly what stayed ticked');
      assert.deepEqual(dialogs, []);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  it('a client named <script>alert(1)</script>: shown as text, nothing runs, no CSP violation on any page', async () => {
    const { context, page, dialogs, violations, documents } = await open();
    try {
      const { config, verifier, state, url } = await authorizationRequest(s.t, 'xss-app', { scope: 'notes:read', resource: NOTES });
      await page.goto(url);
      assert.equal(await heading(page), 'Sign in');
      assert.equal(await page.textContent('.client-name'), XSS_NAME, 'the name is text on the login page');
      assert.equal(await page.locator('script').count(), 0, 'no script element on the login page');

      await signIn(page);
      assert.equal(await heading(page), 'Allow access?');
      assert.equal(await page.textContent('.client-name'), XSS_NAME, 'the name is text on the consent page');
      assert.ok((await mainText(page)).includes(`${XSS_NAME} (name given by the app, not verified)`));
      assert.equal(await page.locator('script').count(), 0, 'no script element on the consent page');
      await page.waitForTimeout(100);

      const callback = await allowAndCaptureRedirect(page);
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
      assert.equal(jwt(tokens.access_token).payload.client_id, 'xss-app');

      assert.ok(documents.length >= 2, 'login and consent pages were visited');
      assert.deepEqual(dialogs, [], 'no dialog may fire');
      assert.deepEqual(violations, [], 'no CSP violation on any page');
    } finally {
      await context.close();
    }
  });

  it('wrong password and unknown user: the same generic error, still on the login page, password emptied', async () => {
    const { context, page, violations } = await open();
    try {
      const { url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read', resource: NOTES });
      await page.goto(url);
      const signedInBefore = s.t.logs.filter((l) => l.event === 'login.succeeded').length;
      const errors: string[] = [];
      for (const [username, password] of [
        ['alice', 'wrong password'],
        ['nobody', PASSWORD],
      ] as const) {
        const response = await signIn(page, username, password);
        assert.equal(response?.status(), 401, username);
        assert.equal(await heading(page), 'Sign in', 'still the login page');
        assert.match(new URL(page.url()).pathname, /^\/interaction\/[A-Za-z0-9_-]+\/login$/);
        assert.equal(await page.locator('#password').inputValue(), '', 'the password field is empty after a failure');
        assert.equal(await page.locator('#username').inputValue(), username, 'the username is kept');
        errors.push(((await page.textContent('.error[role="alert"]')) ?? '').trim());
      }
      assert.equal(errors[0], GENERIC_LOGIN_ERROR);
      assert.equal(errors[1], errors[0], 'the same message whichever half was wrong');
      assert.equal(s.t.logs.filter((l) => l.event === 'login.succeeded').length, signedInBefore, 'nobody signed in');

      // the page still works: the right password now gets through to consent
      await signIn(page);
      assert.equal(await heading(page), 'Allow access?');
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  it('device flow: type the code loosely, confirm, sign in, consent; the device gets tokens', async () => {
    const { context, page, dialogs, violations } = await open();
    try {
      const da = await startDevice(s.t);
      const pending = await pollDevice(s.t, da.device_code);
      assert.equal(pending.body.error, 'authorization_pending');

      await page.goto(da.verification_uri);
      assert.equal(await heading(page), 'Connect a device');
      await page.fill('#user_code', da.user_code.toLowerCase().replace('-', ' '));
      const confirmResponse = await clickAndWait(page, 'button:text("Continue")');
      assert.equal(confirmResponse?.status(), 200);
      assert.equal(await heading(page), 'Confirm the device');
      const text = await mainText(page);
      for (const expected of ['Living-room TV', 'Notes', NOTES, 'Read your notes', 'Create and edit notes', da.user_code]) {
        assert.ok(text.includes(expected), `confirmation shows "${expected}": ${text}`);
      }
      assert.equal((await page.textContent('.user-code'))?.trim(), da.user_code);

      await clickAndWait(page, 'button[name="confirm"]');
      assert.equal(await heading(page), 'Sign in');
      await signIn(page);
      assert.equal(await heading(page), 'Allow access?');
      assert.ok((await mainText(page)).includes('Living-room TV'));
      await clickAndWait(page, 'button:text("Allow")');
      assert.equal(await heading(page), 'Device connected');
      assert.match(await mainText(page), /Living-room TV is now connected\./);

      let result = await pollDevice(s.t, da.device_code);
      for (let i = 0; i < 3 && result.status !== 200 && ['slow_down', 'authorization_pending'].includes(result.body.error ?? ''); i++) {
        await new Promise((r) => setTimeout(r, (da.interval + 1) * 1000));
        result = await pollDevice(s.t, da.device_code);
      }
      assert.equal(result.status, 200, JSON.stringify(result.body));
      const at = jwt(result.body.access_token!);
      assert.equal(at.payload.aud, NOTES);
      assert.equal(at.payload.client_id, 'tv-app');
      assert.equal(at.payload.scope, 'notes:read notes:write');
      assert.deepEqual(dialogs, []);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  it('device flow: verification_uri_complete prefills the code and waits for a click', async () => {
    const { context, page, violations } = await open();
    try {
      const da = await startDevice(s.t);
      await page.goto(da.verification_uri_complete);
      assert.equal(await heading(page), 'Connect a device');
      assert.equal(await page.inputValue('#user_code'), da.user_code);
      await page.waitForTimeout(300);
      assert.equal(await heading(page), 'Connect a device', 'the page does not submit itself');
      assert.equal(await page.locator('script').count(), 0);
      await clickAndWait(page, 'button:text("Continue")');
      assert.equal(await heading(page), 'Confirm the device');
      assert.ok((await mainText(page)).includes('Living-room TV'));
      assert.equal((await page.textContent('.user-code'))?.trim(), da.user_code);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  it('every page forbids framing (CSP frame-ancestors and X-Frame-Options)', async () => {
    const { context, page, documents } = await open();
    try {
      const { url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read', resource: NOTES });
      await page.goto(url); // login
      await signIn(page); // consent
      assert.ok((await allowAndCaptureRedirect(page)).searchParams.get('code'));
      const da = await startDevice(s.t);
      await page.goto(da.verification_uri); // device code
      await page.fill('#user_code', 'BCDF-GHJK');
      await clickAndWait(page, 'button:text("Continue")'); // device code, failed
      await page.fill('#user_code', da.user_code);
      await clickAndWait(page, 'button:text("Continue")'); // device confirm
      await clickAndWait(page, 'button[name="abort"]'); // device cancelled
      await page.goto(s.t.url('/interaction/not-a-real-one')); // our error page
      await page.goto(s.t.url('/auth?client_id=nobody&response_type=code')); // oidc-provider's error page

      const statuses = documents.map((d) => d.status());
      for (const status of [200, 400]) assert.ok(statuses.includes(status), `saw a ${status} page: ${statuses.join(',')}`);
      assert.ok(documents.length >= 7, `pages seen: ${documents.map((d) => d.url()).join(' ')}`);
      for (const doc of documents) {
        const headers = doc.headers();
        assert.ok((headers['content-security-policy'] ?? '').includes("frame-ancestors 'none'"), `CSP on ${doc.status()} ${doc.url()}`);
        assert.equal(headers['x-frame-options'], 'DENY', `X-Frame-Options on ${doc.status()} ${doc.url()}`);
      }
    } finally {
      await context.close();
    }
  });

  it('another site cannot frame the login page', async () => {
    const { context, page } = await open();
    try {
      const { url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read', resource: NOTES });
      await page.goto(url);
      const loginUrl = page.url();
      assert.equal(await heading(page), 'Sign in');

      const consoleErrors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });
      // the server does answer the framed request with the login page: the browser must refuse to show it
      const served = page.waitForResponse((r) => r.url() === loginUrl);
      await page.goto(`${attacker.base}/frame?target=${encodeURIComponent(loginUrl)}`);
      const response = await served;
      assert.equal(response.status(), 200);
      assert.equal(response.frame() === page.mainFrame(), false, 'requested by the iframe');
      await page.waitForLoadState('load');
      await page.waitForTimeout(300);

      assert.equal(await page.textContent('h1'), 'Totally legit', 'the framing page itself renders');
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(frame, 'the iframe exists');
      assert.equal(await frame.locator('#password').count().catch(() => 0), 0, `no password field in the frame (at ${frame.url()})`);
      const framedText = await frame
        .evaluate('document.body ? document.body.innerText : ""')
        .then(String)
        .catch(() => '');
      assert.ok(!framedText.includes('Sign in'), `the frame shows no login form: ${JSON.stringify(framedText.slice(0, 200))}`);
      assert.equal(await frame.locator('input').count().catch(() => 0), 0, 'no form fields in the frame');
      assert.ok(
        consoleErrors.some((e) => /frame-ancestors|X-Frame-Options/i.test(e)),
        `the browser reports the refusal: ${consoleErrors.join(' | ')}`,
      );
    } finally {
      await context.close();
    }
  });

  it('a login POST with a wrong, missing or cross-site csrf token is refused and signs nobody in', async () => {
    const { context, page } = await open();
    try {
      const { url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read', resource: NOTES });
      await page.goto(url);
      const loginUrl = page.url();
      const signedIn = () => s.t.logs.filter((l) => l.event === 'login.succeeded').length;
      const before = signedIn();

      // 1. a tampered token in our own form
      await page.evaluate(`document.querySelector('form[action$="/login"] input[name="csrf"]').value = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'`);
      let response = await signIn(page);
      assert.equal(response?.status(), 403, 'tampered token');
      assert.equal(await heading(page), 'Request blocked');
      assert.ok((await mainText(page)).includes('did not come from this site'));

      // 2. no token at all
      await page.goto(loginUrl);
      assert.equal(await heading(page), 'Sign in', 'still not signed in');
      await page.evaluate(`document.querySelector('form[action$="/login"] input[name="csrf"]').remove()`);
      assert.equal(await page.locator('form[action$="/login"] input[name="csrf"]').count(), 0);
      response = await signIn(page);
      assert.equal(`${response?.status()} ${await heading(page)}`, '403 Request blocked', 'a missing token is refused as CSRF');

      // 3. a form on another origin posting to our login endpoint (the browser sends our cookies: same site)
      await page.goto(`${attacker.base}/forge?target=${encodeURIComponent(`${loginUrl}/login`)}`);
      response = await clickAndWait(page, '#go');
      assert.equal(response?.status(), 403, 'cross-origin form');
      assert.equal(await heading(page), 'Request blocked');

      assert.equal(signedIn(), before, 'nobody signed in');
      await page.goto(loginUrl);
      assert.equal(await heading(page), 'Sign in', 'the interaction still waits for a sign-in');
      // and the genuine form still works
      await signIn(page);
      assert.equal(await heading(page), 'Allow access?');
      assert.equal(signedIn(), before + 1);
    } finally {
      await context.close();
    }
  });

  it('on a 390 px phone: login, consent and device pages fit without horizontal scroll', async () => {
    const { context, page, violations } = await open(390, 844);
    try {
      const { url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read notes:write notes:delete', resource: NOTES });
      await page.goto(url);
      assert.equal(await heading(page), 'Sign in');
      assert.ok((await scrollWidth(page)) <= 390, `login scrollWidth ${await scrollWidth(page)}`);
      await signIn(page);
      assert.equal(await heading(page), 'Allow access?');
      assert.ok((await scrollWidth(page)) <= 390, `consent scrollWidth ${await scrollWidth(page)}`);
      await page.screenshot({ path: '/tmp/e2e-consent.png', fullPage: true });

      const da = await startDevice(s.t);
      await page.goto(da.verification_uri);
      assert.equal(await heading(page), 'Connect a device');
      assert.ok((await scrollWidth(page)) <= 390, `device code scrollWidth ${await scrollWidth(page)}`);
      await page.fill('#user_code', da.user_code);
      await clickAndWait(page, 'button:text("Continue")');
      assert.equal(await heading(page), 'Confirm the device');
      assert.ok((await scrollWidth(page)) <= 390, `device confirm scrollWidth ${await scrollWidth(page)}`);
      await page.screenshot({ path: '/tmp/e2e-device.png', fullPage: true });

      // alice is signed in already: confirm goes straight to consent, then done
      await clickAndWait(page, 'button[name="confirm"]');
      assert.equal(await heading(page), 'Allow access?');
      assert.ok((await scrollWidth(page)) <= 390, `device consent scrollWidth ${await scrollWidth(page)}`);
      await clickAndWait(page, 'button:text("Allow")');
      assert.equal(await heading(page), 'Device connected');
      assert.ok((await scrollWidth(page)) <= 390, `device done scrollWidth ${await scrollWidth(page)}`);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });
});
