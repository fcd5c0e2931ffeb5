/**
 * An upstream that answers wrongly (./rogue-op.ts, over real HTTP): each defect of its answer
 * — an ID token for another nonce, audience or issuer, signed by a key it does not publish or
 * not signed at all, expired or missing; a mixed-up `iss` in the authorization response;
 * userinfo about someone else — is refused with a 502 page and provisions nobody. The same
 * upstream answering correctly signs the person in (so each refusal is the defect's doing),
 * having been asked with PKCE S256, a state and a nonce; and claims of the wrong type are
 * ignored, not trusted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../helpers/browser-driver.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { accountIdFor } from '../../src/connections/provision.js';
import { auditRecords, consentAndRedeem, titleOf, toUpstream } from './oidc-flow.js';
import { ROGUE_CLIENT, ROGUE_SECRET, startRogue, type Defect, type Rogue } from './rogue-op.js';

const TIMEOUT = 120_000;

const fullClaims = (name: string) => ({ preferred_username: name, email: `${name}@rogue.example`, email_verified: true, name: 'Somebody', groups: ['admins'] });

describe('an OIDC connection refuses a wrong answer from its upstream', { timeout: TIMEOUT }, () => {
  let rogue: Rogue;
  let t: TestServer;

  before(async () => {
    rogue = await startRogue();
    t = await startServer({
      store: 'sqlite',
      config: {
        connections: [
          { kind: 'oidc', id: 'rogue', name: 'Rogue', issuer: rogue.issuer, clientId: ROGUE_CLIENT, clientSecret: ROGUE_SECRET, roles: { groups: { admins: ['admin'] } } },
        ],
      },
    });
  });
  after(async () => {
    await t?.stop();
    await rogue?.stop();
  });

  test('answering correctly, it signs the person in; it was asked with PKCE S256, state, nonce, openid and our callback', async () => {
    rogue.defect = 'none';
    rogue.subject = 'mallory';
    rogue.claims = fullClaims('mallory');
    const browser = new Browser();
    const { page, request } = await toUpstream(browser, t, 'rogue');
    await consentAndRedeem(browser, page, request);
    const asked = rogue.lastAuthorization!;
    assert.equal(asked.get('code_challenge_method'), 'S256');
    assert.equal(asked.get('response_type'), 'code');
    assert.equal(asked.get('redirect_uri'), t.url('/connections/rogue/callback'));
    assert.deepEqual(asked.get('scope')?.split(' ').sort(), ['email', 'openid', 'profile']);
    assert.ok((asked.get('state') ?? '').length >= 32 && (asked.get('nonce') ?? '').length >= 32);
    const account = await t.server.store.accounts.findById(accountIdFor('rogue', 'mallory'));
    assert.equal(account?.username, 'mallory');
    assert.deepEqual(account?.roles, ['admin']);
  });

  const defects: [Defect, string][] = [
    ['wrong-nonce', 'an ID token for another nonce'],
    ['wrong-audience', 'an ID token for another client'],
    ['wrong-issuer', 'an ID token from another issuer'],
    ['foreign-key', 'an ID token signed by a key the upstream does not publish'],
    ['unsigned', 'an unsigned ID token (alg none)'],
    ['expired', 'an expired ID token'],
    ['no-id-token', 'no ID token'],
    ['mixed-up-response-iss', 'an authorization response naming another issuer (mix-up)'],
    ['userinfo-about-someone-else', 'userinfo about another subject'],
  ];
  for (const [defect, what] of defects) {
    test(`${what}: a 502 page, nobody provisioned, the reason in the log`, async () => {
      rogue.defect = defect;
      rogue.subject = `victim-${defect}`;
      // without the usual claims in the ID token, userinfo is asked
      rogue.claims = defect === 'userinfo-about-someone-else' ? {} : fullClaims(`victim-${defect}`);
      const logged = t.logs.length;
      const { page } = await toUpstream(new Browser(), t, 'rogue');
      assert.equal(page.status, 502, page.html.slice(0, 300));
      assert.equal(titleOf(page), 'Sign-in with Rogue failed');
      assert.match(page.html, /Rogue did not confirm who you are/);
      assert.equal(await t.server.store.accounts.findById(accountIdFor('rogue', `victim-${defect}`)), undefined);
      assert.equal(await t.server.store.accounts.findById(accountIdFor('rogue', 'someone-else')), undefined);
      const failure = t.logs.slice(logged).find((l) => l.event === 'login.failed' && l.connection === 'rogue');
      assert.match(String(failure?.reason), /^invalid_answer: /);
      await t.server.audit.flush();
      const audited = auditRecords(t).at(-1);
      assert.equal(audited?.event, 'login.failed');
      assert.equal(audited?.client, 'web-app');
      assert.deepEqual(audited?.details, { reason: 'invalid_answer', connection: 'rogue', method: 'oidc' });
    });
  }

  test('a fresh sign-in asked of us (prompt=login) is asked of the upstream, with the login_hint; an ID token from an older sign-in is refused, a fresh one accepted', async () => {
    rogue.defect = 'none';
    rogue.subject = 'stale';
    rogue.claims = { ...fullClaims('stale'), auth_time: Math.floor(Date.now() / 1000) - 3600 };
    const params = { prompt: 'login', login_hint: 'stale@rogue.example' };
    const { page } = await toUpstream(new Browser(), t, 'rogue', 'notes:read', 'web-app', params);
    const asked = rogue.lastAuthorization!;
    assert.equal(asked.get('prompt'), 'login');
    assert.equal(asked.get('max_age'), '0');
    assert.equal(asked.get('login_hint'), 'stale@rogue.example');
    assert.equal(page.status, 502, 'signed in an hour ago: not fresh');
    assert.equal(await t.server.store.accounts.findById(accountIdFor('rogue', 'stale')), undefined);

    rogue.claims = { ...fullClaims('stale'), auth_time: Math.floor(Date.now() / 1000) };
    const browser = new Browser();
    const fresh = await toUpstream(browser, t, 'rogue', 'notes:read', 'web-app', params);
    await consentAndRedeem(browser, fresh.page, fresh.request);

    await toUpstream(new Browser(), t, 'rogue');
    assert.equal(rogue.lastAuthorization!.get('prompt'), null, 'not asked when the client did not');
    assert.equal(rogue.lastAuthorization!.get('max_age'), null);
  });

  test('claims of the wrong type are ignored: no name, no address, the username falls back to the subject; a single group string counts', async () => {
    rogue.defect = 'none';
    rogue.subject = 'odd-claims';
    rogue.claims = { preferred_username: 42, email: 'not-an-address', email_verified: true, name: { first: 'x' }, groups: 'admins' };
    const browser = new Browser();
    const { page, request } = await toUpstream(browser, t, 'rogue');
    await consentAndRedeem(browser, page, request);
    const account = await t.server.store.accounts.findById(accountIdFor('rogue', 'odd-claims'));
    assert.equal(account?.username, 'odd-claims');
    assert.equal(account?.email, undefined);
    assert.equal(account?.displayName, undefined);
    assert.deepEqual(account?.roles, ['admin']);
  });

  test('none of its codes and tokens, nor our secret there, is in our log or audit records', async () => {
    assert.ok(rogue.secrets.length > 10);
    await t.server.audit.flush();
    const written = JSON.stringify(t.logs) + JSON.stringify(auditRecords(t));
    for (const secret of [...rogue.secrets, ROGUE_SECRET]) assert.ok(!written.includes(secret));
  });
});
