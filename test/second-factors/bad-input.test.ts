/**
 * Hostile and broken input to the second-factor routes, with the real server: forged or
 * missing CSRF tokens, answers without a challenge, credentials that are not credentials, a
 * replayed challenge — each answered with a page (400/401/403), never a 500, and a wrong
 * passkey answer is audited like a wrong code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { writeSecondFactors } from '../../src/accounts/second-factors.js';
import { auditRecords, Browser, consentAndRedeem, findForm, signIn } from './support.js';

const JUNK_CREDENTIALS = [
  '',
  'not json',
  '{"id":"x"',
  JSON.stringify({ id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: { clientDataJSON: '!!', authenticatorData: '??', signature: '' } }),
  JSON.stringify({ id: 'a'.repeat(2000), rawId: 'x', type: 'public-key', response: {} }),
  JSON.stringify({ id: '<script>', type: 'public-key', response: null }),
];

describe('second-factor routes and bad input', { timeout: 120_000 }, () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ store: 'sqlite', users: { alice: [], bob: [] }, config: { audit: { sink: 'file' }, rateLimits: { signInPerAccountSource: { max: 50, window: 900 }, signInPerSource: { max: 100, window: 900 } } } as never });
    // bob has a passkey (made up: no authenticator can answer for it)
    await t.server.store.accounts.update('bob', {
      secondFactors: writeSecondFactors({ passkeys: [{ id: 'Y3JlZC0x', publicKey: 'cHVibGljLWtleQ', counter: 0, transports: ['internal'], name: 'Laptop', createdAt: 1 }], recoveryCodes: [] }),
    });
  });
  after(async () => {
    await t?.stop();
  });

  const post = (browser: Browser, path: string, fields: Record<string, string>) => browser.go(t.url(path), { method: 'POST', body: new URLSearchParams(fields) });

  test('unknown interactions and no pending step: 400, never a 500', async () => {
    const browser = new Browser();
    for (const path of ['/interaction/unknown/second-factor', '/interaction/%ff/second-factor', `/interaction/${'z'.repeat(300)}/second-factor`]) {
      const page = await browser.go(t.url(path));
      assert.equal(page.status, 400, path);
    }
    for (const path of ['/interaction/unknown/second-factor', '/interaction/unknown/second-factor/passkey', '/interaction/unknown/second-factor/passkey/options', '/interaction/unknown/second-factor/continue']) {
      assert.equal((await post(browser, path, { csrf: 'x', code: '123456', credential: '{}' })).status, 400, path);
    }
  });

  test('at sign-in: a passkey answer without its challenge is refused, junk answers are refused and audited, the challenge is used once', async () => {
    const browser = new Browser();
    const { page } = await signIn(t, browser, { username: 'bob' });
    const passkeyForm = findForm(page, '/second-factor/passkey');
    const csrf = passkeyForm.fields.find((f) => f.name === 'csrf')!.value;
    const base = new URL(passkeyForm.action).pathname;
    assert.equal((await post(browser, base, { csrf, credential: '{}' })).status, 400, 'no challenge asked for yet');
    assert.equal((await post(browser, `${base}/options`, { csrf: 'forged' })).status, 403, 'options need the CSRF token');
    for (const credential of JUNK_CREDENTIALS) {
      const options = await browser.go(t.url(`${base}/options`), { method: 'POST', body: new URLSearchParams({ csrf }) });
      assert.equal(options.status, 200);
      const json = JSON.parse(options.html) as { challenge: string; rpId: string; allowCredentials: { id: string }[] };
      assert.equal(json.rpId, '127.0.0.1');
      assert.deepEqual(json.allowCredentials.map((c) => c.id), ['Y3JlZC0x']);
      const answer = await post(browser, base, { csrf, credential });
      assert.equal(answer.status, 401, `refused: ${credential.slice(0, 40)}`);
      assert.equal((await post(browser, base, { csrf, credential })).status, 400, 'the challenge was used up');
    }
    const bobId = (await t.server.store.accounts.findByUsername('bob'))!.id;
    const { records } = await auditRecords(t);
    assert.ok(records.some((r) => r.event === 'second_factor.failed' && r.actor === bobId && r.details?.reason === 'passkey_not_verified'));
  });

  test('on the sign-in security page: forged CSRF, no challenge, junk credentials, odd notices', async () => {
    const browser = new Browser();
    const { request, page } = await signIn(t, browser, { username: 'alice' });
    await consentAndRedeem(browser, page, request);
    const overview = await browser.go(t.url('/account/security?done=%ff'));
    assert.equal(overview.status, 200);
    const csrf = findForm(overview, '/account/security/passkeys').fields.find((f) => f.name === 'csrf')!.value;
    for (const path of ['/account/security/passkeys/options', '/account/security/passkeys', '/account/security/recovery-codes', '/account/security/totp', '/account/security/verify']) {
      assert.equal((await post(browser, path, { csrf: 'forged', code: '1', credential: '{}' })).status, 403, path);
    }
    assert.equal((await post(browser, '/account/security/passkeys', { csrf, credential: '{}' })).status, 400, 'no challenge');
    assert.equal((await post(browser, '/account/security/verify/passkey', { csrf, credential: '{}' })).status, 400, 'no challenge');
    assert.equal((await post(browser, '/account/security/totp', { csrf, code: '123456' })).status, 400, 'no set-up started');
    assert.equal((await post(browser, '/account/security/recovery-codes', { csrf })).status, 400, 'no factor yet');
    for (const credential of JUNK_CREDENTIALS) {
      const options = await post(browser, '/account/security/passkeys/options', { csrf });
      assert.equal(options.status, 200);
      const json = JSON.parse(options.html) as { rp: { id: string }; challenge: string };
      assert.equal(json.rp.id, '127.0.0.1');
      const answer = await post(browser, '/account/security/passkeys', { csrf, credential, name: '<b>x</b>' });
      assert.equal(answer.status, 400, `refused: ${credential.slice(0, 40)}`);
    }
    assert.equal((await t.server.store.accounts.findByUsername('alice'))!.secondFactors, undefined, 'nothing saved');
    assert.deepEqual(t.logs.filter((l) => Number(l.level) >= 50).map((l) => l.msg), [], 'nothing logged as an error');
  });
});
