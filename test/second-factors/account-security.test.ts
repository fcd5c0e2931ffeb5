/**
 * The sign-in security page's rules, over HTTP with the real server: only a signed-in browser
 * sees it; every form needs its CSRF token; once a factor exists, changing anything needs a
 * fresh second factor (a code on the page, or a session signed in with one); a first factor
 * needs only the sign-in; new recovery codes replace the old ones; every change is audited.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { readSecondFactors } from '../../src/accounts/second-factors.js';
import { auditRecords, Browser, codeOf, consentAndRedeem, enrolTotp, findForm, signIn, wrongCodeOf } from './support.js';

describe('the sign-in security page', { timeout: 120_000 }, () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ store: 'sqlite', users: { alice: [], bob: [] }, config: { audit: { sink: 'file' } } as never });
  });
  after(async () => {
    await t?.stop();
  });

  /** A browser signed in with the password only. */
  async function signedIn(username: string): Promise<Browser> {
    const browser = new Browser();
    const { request, page } = await signIn(t, browser, { username });
    await consentAndRedeem(browser, page, request);
    return browser;
  }

  test('not signed in: a 401 page, and its forms refused', async () => {
    const browser = new Browser();
    const page = await browser.go(t.url('/account/security'));
    assert.equal(page.status, 401);
    assert.match(page.html, /not signed in/);
    const post = await browser.go(t.url('/account/security/totp/remove'), { method: 'POST', body: new URLSearchParams({ csrf: 'x' }) });
    assert.equal(post.status, 401);
  });

  test('a first factor needs only the sign-in; with a factor, removal needs a fresh second factor, given on the page', async () => {
    const browser = await signedIn('alice');
    // set up: the page's secret, a wrong code refused, the right one saves it
    let page = await browser.go(t.url('/account/security/totp'));
    const secret = /<code class="totp-secret">([A-Z2-7]+)<\/code>/.exec(page.html)?.[1];
    assert.ok(secret);
    const wrong = await browser.submit(findForm(page, '/account/security/totp'), { code: await wrongCodeOf(secret) });
    assert.equal(wrong.status, 401);
    const noCsrf = await browser.submit(findForm(page, '/account/security/totp'), { csrf: 'forged', code: await codeOf(secret) });
    assert.equal(noCsrf.status, 403, 'CSRF token checked');
    page = await browser.submit(findForm(page, '/account/security/totp'), { code: await codeOf(secret) });
    assert.equal([...page.html.matchAll(/<li><code>/g)].length, 10, 'recovery codes shown');
    const aliceId = (await t.server.store.accounts.findByUsername('alice'))!.id;

    // a session signed in with the password only (before the factor existed) may not remove it
    const passwordOnly = await signedInPasswordOnlyAfterEnrolment();
    const overview = await passwordOnly.go(t.url('/account/security'));
    assert.match(overview.html, /Confirm it is you/, 'asked to verify first');
    assert.doesNotMatch(overview.html, /Remove authenticator app/);
    const csrf = findForm(overview, '/account/security/verify').fields.find((f) => f.name === 'csrf')!.value;
    const refused = await passwordOnly.go(t.url('/account/security/totp/remove'), { method: 'POST', body: new URLSearchParams({ csrf }) });
    assert.equal(refused.status, 403, 'removal refused without a fresh second factor');
    assert.ok(readSecondFactors((await t.server.store.accounts.findByUsername('alice'))!).state === 'ok');
    assert.ok((await t.server.store.accounts.findByUsername('alice'))!.secondFactors?.includes('totp'));
    const badVerify = await passwordOnly.submit(findForm(overview, '/account/security/verify'), { code: await wrongCodeOf(secret) });
    assert.equal(badVerify.status, 401);
    const verified = await passwordOnly.submit(findForm(overview, '/account/security/verify'), { code: await codeOf(secret, 1) });
    assert.match(verified.html, /Verified/);
    const removed = await passwordOnly.submit(findForm(verified, '/account/security/totp/remove'));
    assert.match(removed.html, /was removed/);
    assert.equal((await t.server.store.accounts.findByUsername('alice'))!.secondFactors, undefined);

    const { records, text } = await auditRecords(t);
    for (const [event, method] of [['second_factor.enrolled', 'totp'], ['second_factor.removed', 'totp'], ['second_factor.verified', 'totp']] as const) {
      assert.ok(records.some((r) => r.event === event && r.actor === aliceId && r.details?.method === method), `${event} audited`);
    }
    assert.ok(records.some((r) => r.event === 'second_factor.failed' && r.actor === aliceId && r.details?.context === 'account'));
    assert.ok(!text.includes(secret));

    /** alice's password-only session from before her factor existed: signed in while she had none. */
    async function signedInPasswordOnlyAfterEnrolment(): Promise<Browser> {
      const saved = (await t.server.store.accounts.findByUsername('alice'))!.secondFactors!;
      await t.server.store.accounts.update('alice', { secondFactors: '' });
      const session = await signedIn('alice');
      await t.server.store.accounts.update('alice', { secondFactors: saved });
      return session;
    }
  });

  test('new recovery codes replace the old ones, and need a fresh second factor', async () => {
    const { secret, codes: old } = await enrolTotp(t, 'bob');
    const browser = await signedInWithCode('bob', secret);
    const overview = await browser.go(t.url('/account/security'));
    assert.match(overview.html, /10 unused recovery codes left/);
    const page = await browser.submit(findForm(overview, '/account/security/recovery-codes'));
    const fresh = [...page.html.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map((m) => m[1]!);
    assert.equal(fresh.length, 10);
    const stored = readSecondFactors((await t.server.store.accounts.findByUsername('bob'))!);
    assert.ok(stored.state === 'ok' && stored.factors.recoveryCodes.length === 10);
    // an old code no longer signs in; a new one does
    const other = new Browser();
    const { page: step } = await signIn(t, other, { username: 'bob' });
    const refused = await other.submit(findForm(step, '/second-factor'), { code: old[0]! });
    assert.equal(refused.status, 401);
    const ok = await other.submit(findForm(refused, '/second-factor'), { code: fresh[0]! });
    assert.ok(ok.forms.some((f) => f.action.endsWith('/confirm')));
  });

  async function signedInWithCode(username: string, secret: string): Promise<Browser> {
    const browser = new Browser();
    const { request, page } = await signIn(t, browser, { username });
    const consent = await browser.submit(findForm(page, '/second-factor'), { code: await codeOf(secret) });
    await consentAndRedeem(browser, consent, request);
    return browser;
  }
});
