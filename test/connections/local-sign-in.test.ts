/**
 * `localSignIn.enabled: false`, through the real pages (the protocol browser): the login page
 * has no password form of its own, a password posted to the local sign-in anyway is a 404
 * (nobody signed in, the password never looked at), and home-realm discovery with an address
 * on no connection's domain says so instead of falling back to local sign-in. With it on (the
 * default), the local form is there and discovery falls back to it. The connection is a
 * directory nobody answers at: only its domain matters here.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { Browser, findForm, type Page } from '../helpers/browser-driver.js';
import { authorizationRequest } from '../helpers/flows.js';
import { NOTES, PASSWORD, REDIRECT } from '../helpers/fixtures.js';

const directory = {
  kind: 'ldap',
  id: 'corp',
  name: 'Example Directory',
  url: 'ldap://127.0.0.1:9',
  bindDn: 'cn=reader,dc=example,dc=test',
  bindPassword: 'reader-password',
  userBase: 'dc=example,dc=test',
  domains: ['example.test'],
  timeout: 1000,
};

/** The local sign-in form (not a connection's, whose action is …/connection/<id>/login). */
const localForm = (page: Page) => page.forms.find((f) => /\/interaction\/[^/]+\/login$/.test(new URL(f.action).pathname));

describe('local sign-in turned off', { timeout: 60_000 }, () => {
  let off: TestServer;
  let on: TestServer;
  before(async () => {
    [off, on] = await Promise.all([
      startServer({ store: 'sqlite', users: { alice: [] }, config: { localSignIn: { enabled: false }, connections: [directory] } as never }),
      startServer({ store: 'sqlite', users: { alice: [] }, config: { connections: [directory] } as never }),
    ]);
  });
  after(async () => {
    await Promise.all([off?.stop(), on?.stop()]);
  });

  async function loginPage(t: TestServer) {
    const browser = new Browser();
    const request = await authorizationRequest(t, 'web-app', { scope: 'openid notes:read', resource: NOTES });
    const page = await browser.go(request.url, {}, REDIRECT);
    assert.equal(page.status, 200);
    return { browser, page };
  }

  test('the login page has no password form of its own; discovery and the connection are offered', async () => {
    const { page } = await loginPage(off);
    assert.equal(localForm(page), undefined, 'no local form');
    assert.doesNotMatch(page.html, /id="password"/);
    assert.ok(findForm(page, '/discover'), 'the discovery form');
    assert.match(page.html, /data-connection="corp"/);
  });

  test("a password posted to the local sign-in anyway: 404, nobody signed in, the password never checked", async () => {
    const { browser, page } = await loginPage(off);
    const discover = findForm(page, '/discover');
    const csrf = discover.fields.find((f) => f.name === 'csrf')!.value;
    const loginUrl = new URL(discover.action.replace(/\/discover$/, '/login'));
    const answer = await browser.go(loginUrl.href, { method: 'POST', body: new URLSearchParams({ csrf, username: 'alice', password: PASSWORD }) }, REDIRECT);
    assert.equal(answer.status, 404);
    assert.match(answer.html, /turned off/);
    assert.ok(!answer.url.startsWith(REDIRECT), 'not back at the app');
    assert.ok(!off.logs.some((l) => l.event === 'login.succeeded' || l.event === 'login.failed'), 'the password was never checked');
  });

  test('discovery with an address on no connection\'s domain: "no sign-in service", not the local form', async () => {
    const { browser, page } = await loginPage(off);
    const answer = await browser.submit(findForm(page, '/discover'), { email: 'dana@elsewhere.test' }, undefined, REDIRECT);
    assert.equal(answer.status, 400);
    assert.match(answer.html, /No sign-in service here is set up for that address\./);
    assert.equal(localForm(answer), undefined, 'no fallback to local sign-in');
    assert.doesNotMatch(answer.html, /value="dana@elsewhere\.test"/);
  });

  test('turned on (the default): the local form is there, and discovery falls back to it with the address filled in', async () => {
    const { browser, page } = await loginPage(on);
    assert.ok(localForm(page), 'the local form');
    const answer = await browser.submit(findForm(page, '/discover'), { email: 'dana@elsewhere.test' }, undefined, REDIRECT);
    assert.equal(answer.status, 200);
    assert.ok(localForm(answer), 'the local form after discovery');
    assert.match(answer.html, /id="username"[^>]*value="dana@elsewhere\.test"/);
    const consent = await browser.submit(localForm(answer)!, { username: 'alice', password: PASSWORD }, undefined, REDIRECT);
    assert.ok(consent.forms.some((f) => f.action.endsWith('/confirm')), 'alice signs in with her password');
  });
});
