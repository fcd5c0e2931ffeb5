/**
 * Passkey answers at sign-in are counted like passwords (src/second-factors/check.ts, the same
 * `2fa:<account>` limiter as codes): junk answers run the count up to a 429 page with
 * Retry-After, and then even a right answer from the person's own passkey is refused until the
 * window passes. The passkey is a software authenticator made here (a P-256 key signing what a
 * browser would send), so the right answer is really right: it signs a person in when not limited.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server.js';
import { writeSecondFactors } from '../../src/accounts/second-factors.js';
import { auditRecords, Browser, consentAndRedeem, findForm, REDIRECT, signIn } from './support.js';

/** A passkey held in memory: it answers a challenge the way an authenticator does (WebAuthn §6.1, §7.2). */
class SoftPasskey {
  readonly id = Buffer.from(`soft-${Math.random()}`).toString('base64url');
  readonly #key: KeyObject;
  readonly publicKey: string;
  #counter = 0;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#key = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    const x = Buffer.from(jwk.x!, 'base64url');
    const y = Buffer.from(jwk.y!, 'base64url');
    // COSE_Key as CBOR: {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}
    this.publicKey = Buffer.concat([Buffer.from([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20]), x, Buffer.from([0x22, 0x58, 0x20]), y]).toString('base64url');
  }

  record() {
    return { id: this.id, publicKey: this.publicKey, counter: 0, transports: ['internal'], name: 'Soft key', createdAt: 1 };
  }

  /** The `credential.toJSON()` a browser posts for `challenge` at `origin`. */
  answer(challenge: string, origin: string, rpId: string): string {
    this.#counter += 1;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.#counter);
    const authenticatorData = Buffer.concat([createHash('sha256').update(rpId).digest(), Buffer.from([0x05]), counter]); // user present + verified
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin, crossOrigin: false }));
    const signature = sign('sha256', Buffer.concat([authenticatorData, createHash('sha256').update(clientDataJSON).digest()]), this.#key);
    return JSON.stringify({
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON: clientDataJSON.toString('base64url'), authenticatorData: authenticatorData.toString('base64url'), signature: signature.toString('base64url') },
      clientExtensionResults: {},
    });
  }
}

const JUNK = JSON.stringify({ id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: { clientDataJSON: 'e30', authenticatorData: 'AAAA', signature: 'AAAA' } });

describe('passkey attempts are limited like passwords', { timeout: 120_000 }, () => {
  let t: TestServer;
  const keys = { alice: new SoftPasskey(), bob: new SoftPasskey() };
  before(async () => {
    t = await startServer({ store: 'sqlite', users: { alice: [], bob: [] }, config: { audit: { sink: 'file' }, rateLimits: { signInPerSource: { max: 100, window: 900 } } } as never });
    for (const [username, key] of Object.entries(keys)) {
      await t.server.store.accounts.update(username, { secondFactors: writeSecondFactors({ passkeys: [key.record()], recoveryCodes: [] }) });
    }
  });
  after(async () => {
    await t?.stop();
  });

  /** Asks for a challenge on the second-factor page and posts `answer(challenge)`. */
  async function tryPasskey(browser: Browser, page: Awaited<ReturnType<Browser['go']>>, answer: (challenge: string, rpId: string) => string) {
    const form = findForm(page, '/second-factor/passkey');
    const csrf = form.fields.find((f) => f.name === 'csrf')!.value;
    const base = new URL(form.action).pathname;
    const options = await browser.go(t.url(`${base}/options`), { method: 'POST', body: new URLSearchParams({ csrf }) });
    assert.equal(options.status, 200);
    const { challenge, rpId } = JSON.parse(options.html) as { challenge: string; rpId: string };
    return browser.go(t.url(base), { method: 'POST', body: new URLSearchParams({ csrf, credential: answer(challenge, rpId) }) }, REDIRECT);
  }

  test('the software passkey is a right answer: it signs bob in with hwk', async () => {
    const browser = new Browser();
    const { request, page } = await signIn(t, browser, { username: 'bob' });
    const consent = await tryPasskey(browser, page, (challenge, rpId) => keys.bob.answer(challenge, new URL(t.issuer).origin, rpId));
    assert.ok(consent.forms.some((f) => f.action.endsWith('/confirm')), `on to consent, got ${consent.status}`);
    const { id } = await consentAndRedeem(browser, consent, request);
    assert.deepEqual(id?.amr, ['pwd', 'hwk', 'mfa']);
  });

  test('after five junk answers, even the right passkey gets a 429 page with Retry-After', async () => {
    const browser = new Browser();
    const { page } = await signIn(t, browser, { username: 'alice' });
    for (let i = 0; i < 5; i++) {
      const refused = await tryPasskey(browser, page, () => JUNK);
      assert.equal(refused.status, 401, `junk answer ${i + 1}`);
    }
    const limited = await tryPasskey(browser, page, (challenge, rpId) => keys.alice.answer(challenge, new URL(t.issuer).origin, rpId));
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1, 'Retry-After says when to come back');
    assert.match(limited.html, /Too many/);
    assert.ok(!limited.url.startsWith(REDIRECT), 'not signed in');
    const aliceId = (await t.server.store.accounts.findByUsername('alice'))!.id;
    const { records } = await auditRecords(t);
    assert.equal(records.filter((r) => r.event === 'second_factor.failed' && r.actor === aliceId && r.details?.reason === 'passkey_not_verified').length, 5);
    assert.ok(records.some((r) => r.event === 'rate_limit.hit' && r.details?.limit === 'signInPerAccountSource'));
    assert.ok(!records.some((r) => r.event === 'second_factor.verified' && r.actor === aliceId), 'the right passkey was not accepted within the window');
  });
});
