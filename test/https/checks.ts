/**
 * The checks both https set-ups must pass (test/https/direct.test.ts, test/https/proxy.test.ts):
 * registered as node:test cases inside the caller's describe().
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { NOTES } from '../helpers/fixtures.js';
import {
  allowAndCaptureRedirect,
  authorizationUrl,
  clickAndWait,
  fetchTls,
  heading,
  HTTPS_CLIENT,
  HTTPS_CLIENT_NAME,
  HTTPS_REDIRECT,
  pkce,
  signInAndConsent,
  watch,
  type SetCookie,
  type Site,
} from './support.js';

const HSTS = /^max-age=\d{7,}/;
const CSRF_COOKIE = '__Host-mcp-authz.csrf';
/** oidc-provider's cookies as this server names them (src/provider/configuration.ts), each with its `.sig` */
const ENGINE_COOKIES = ['mcp_authz_interaction', 'mcp_authz_resume', 'mcp_authz_session'];

async function discovery(site: Site): Promise<Record<string, unknown>> {
  const answer = await fetchTls(site.pki, `${site.issuer}/.well-known/oauth-authorization-server`);
  assert.equal(answer.status, 200, answer.body);
  return JSON.parse(answer.body) as Record<string, unknown>;
}

function describeCookie(c: SetCookie): string {
  return `${c.name} (${[...c.attributes].map(([k, v]) => (v ? `${k}=${v}` : k)).join('; ')}) from ${new URL(c.url).pathname}`;
}

export function httpsChecks(get: () => { site: Site; browser: Browser }): void {
  async function open(): Promise<{ context: BrowserContext; page: Page }> {
    const { browser } = get();
    // the certificate is trusted by its key (launch flag), not by ignoring errors
    const context = await browser.newContext({ ignoreHTTPSErrors: false });
    context.setDefaultTimeout(10_000);
    context.setDefaultNavigationTimeout(10_000);
    return { context, page: await context.newPage() };
  }

  it("discovery: the issuer and every endpoint are https at the issuer's origin", async () => {
    const { site } = get();
    const doc = await discovery(site);
    assert.equal(doc.issuer, site.issuer);
    const urls = Object.entries(doc).filter(([k, v]) => typeof v === 'string' && (k.endsWith('_endpoint') || k.endsWith('_uri')));
    assert.ok(urls.length >= 5, JSON.stringify(urls));
    for (const [k, v] of urls) {
      if (k === 'op_policy_uri' || k === 'op_tos_uri' || k === 'service_documentation') continue;
      assert.ok(String(v).startsWith(`${site.issuer}/`), `${k}: ${String(v)}`);
    }
  });

  it('sign-in → consent → code → token, connected apps, revoke: Secure/HttpOnly/SameSite cookies, the __Host- CSRF cookie, HSTS on every page', async (t) => {
    const { site } = get();
    const doc = await discovery(site);
    const { context, page } = await open();
    try {
      const seen = watch(page, site.issuer);
      const p = pkce();
      const callback = await signInAndConsent(page, authorizationUrl(String(doc.authorization_endpoint), p));
      assert.equal(callback.searchParams.get('state'), p.state);
      assert.equal(callback.searchParams.get('iss'), site.issuer);
      const code = callback.searchParams.get('code');
      assert.ok(code, `a code: ${callback.href}`);

      // the client redeems it at the token endpoint, over TLS, with its https redirect URI
      const token = await fetchTls(site.pki, String(doc.token_endpoint), {
        form: { grant_type: 'authorization_code', code, redirect_uri: HTTPS_REDIRECT, client_id: HTTPS_CLIENT, code_verifier: p.verifier, resource: NOTES },
      });
      assert.equal(token.status, 200, token.body);
      const tokens = JSON.parse(token.body) as { access_token: string; token_type: string; scope: string };
      assert.equal(tokens.token_type, 'Bearer');
      assert.equal(tokens.scope, 'notes:read');
      const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss: string; aud: string };
      assert.equal(payload.iss, site.issuer);
      assert.equal(payload.aud, NOTES);
      assert.match(String(token.headers['strict-transport-security'] ?? ''), HSTS, 'HSTS on the token endpoint too');

      // connected apps: the app is listed, revoking it works
      const apps = await page.goto(`${site.issuer}/account/apps`);
      assert.equal(apps?.status(), 200);
      assert.equal(await heading(page), 'Connected apps');
      assert.ok(((await page.textContent('main')) ?? '').includes(HTTPS_CLIENT_NAME));
      const revoked = await clickAndWait(page, `button:text("Revoke ${HTTPS_CLIENT_NAME}")`);
      assert.equal(revoked?.status(), 200);
      assert.equal(new URL(page.url()).search, '?done=revoked');
      const after = (await page.textContent('main')) ?? '';
      assert.ok(after.includes('Done: that app can no longer access your account.'), after);
      assert.ok(!after.includes(`Revoke ${HTTPS_CLIENT_NAME}`), 'the app is gone from the list');

      await seen.settled();
      // HSTS on every page the server answered in the browser
      assert.ok(seen.documents.length >= 4, `pages seen: ${seen.documents.map((d) => d.url()).join(', ')}`);
      for (const d of seen.documents) assert.match(d.headers()['strict-transport-security'] ?? '', HSTS, `HSTS on ${d.url()}`);

      // every cookie the server set: Secure, HttpOnly, SameSite=Lax
      const names = new Set(seen.cookies.map((c) => c.name));
      t.diagnostic(`cookies set: ${[...names].sort().join(', ')}`);
      for (const name of ENGINE_COOKIES) {
        assert.ok(names.has(name) && names.has(`${name}.sig`), `${name} and ${name}.sig were set: ${[...names].join(', ')}`);
      }
      assert.ok(names.has(CSRF_COOKIE), `the CSRF cookie is ${CSRF_COOKIE}: ${[...names].join(', ')}`);
      assert.ok(!names.has('mcp-authz.csrf'), 'never the http name');
      // the browser a person signed in with (src/http/trusted-browser.ts) is remembered under __Host- too
      assert.ok(names.has('__Host-mcp-authz.browser') && !names.has('mcp-authz.browser'), `the trusted-browser cookie is __Host-: ${[...names].join(', ')}`);
      for (const c of seen.cookies) {
        assert.ok(c.attributes.has('secure'), `Secure: ${describeCookie(c)}`);
        assert.ok(c.attributes.has('httponly'), `HttpOnly: ${describeCookie(c)}`);
        assert.equal(c.attributes.get('samesite')?.toLowerCase(), 'lax', `SameSite=Lax: ${describeCookie(c)}`);
        assert.ok(!c.attributes.has('domain'), `host-only: ${describeCookie(c)}`);
        if (c.name.startsWith('__Host-')) assert.equal(c.attributes.get('path'), '/', `__Host- needs Path=/: ${describeCookie(c)}`);
      }
      // and the browser kept them (a Secure or __Host- cookie it refused would be missing here)
      const jar = await context.cookies(site.issuer);
      const csrf = jar.find((c) => c.name === CSRF_COOKIE);
      assert.ok(csrf, `Chromium kept ${CSRF_COOKIE}: ${jar.map((c) => c.name).join(', ')}`);
      assert.equal(csrf.secure, true);
      assert.equal(csrf.httpOnly, true);
      assert.equal(csrf.path, '/');
      assert.equal(csrf.domain, 'localhost', 'host-only, no Domain attribute');
      for (const c of jar) assert.equal(c.secure, true, `${c.name} is Secure in the jar`);
    } finally {
      await context.close();
    }
  });

  it('CSRF: a form post with a forged or a missing token is refused with a 4xx page, not a 500', async () => {
    const { site } = get();
    const doc = await discovery(site);
    const { context, page } = await open();
    try {
      // the sign-in form, forged token: nobody is signed in
      await page.goto(authorizationUrl(String(doc.authorization_endpoint), pkce()));
      assert.equal(await heading(page), 'Sign in');
      const interaction = page.url();
      await page.fill('#username', 'alice');
      await page.fill('#password', 'correct horse battery staple');
      await page.evaluate(`document.querySelector('input[name="csrf"]').value = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'`);
      const forged = await clickAndWait(page, 'button:text("Sign in")');
      const forgedStatus = forged?.status() ?? 0;
      assert.ok(forgedStatus === 400 || forgedStatus === 403, `forged token on sign-in: ${forgedStatus}`);
      assert.notEqual(await heading(page), 'Allow access?');

      // the same form, token removed
      await page.goto(interaction);
      assert.equal(await heading(page), 'Sign in');
      await page.fill('#username', 'alice');
      await page.fill('#password', 'correct horse battery staple');
      await page.evaluate(`document.querySelector('input[name="csrf"]').remove()`);
      const missing = await clickAndWait(page, 'button:text("Sign in")');
      const missingStatus = missing?.status() ?? 0;
      assert.ok(missingStatus === 400 || missingStatus === 403, `missing token on sign-in: ${missingStatus}`);

      // signed in for real, then a forged revoke on connected apps
      await page.goto(interaction);
      await page.fill('#username', 'alice');
      await page.fill('#password', 'correct horse battery staple');
      await clickAndWait(page, 'button:text("Sign in")');
      assert.equal(await heading(page), 'Allow access?');
      await allowAndCaptureRedirect(page);
      await page.goto(`${site.issuer}/account/apps`);
      assert.equal(await heading(page), 'Connected apps');
      await page.evaluate(`document.querySelector('form[action$="/revoke"] input[name="csrf"]').value = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'`);
      const forgedRevoke = await clickAndWait(page, `button:text("Revoke ${HTTPS_CLIENT_NAME}")`);
      const revokeStatus = forgedRevoke?.status() ?? 0;
      assert.ok(revokeStatus === 400 || revokeStatus === 403, `forged token on revoke: ${revokeStatus}`);
      await page.goto(`${site.issuer}/account/apps`);
      assert.ok(((await page.textContent('main')) ?? '').includes(`Revoke ${HTTPS_CLIENT_NAME}`), 'the app is still connected');
    } finally {
      await context.close();
    }
  });
}
