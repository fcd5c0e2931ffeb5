/**
 * What an OIDC connection refuses, against a real upstream (./oidc-upstream.ts), each a short
 * page and never a 500: an upstream that cannot be reached (the server starts anyway, and the
 * next sign-in discovers it), the person cancelling upstream, a replayed or forged `state`, a
 * callback opened in another browser than the one that started (login CSRF), the connection's
 * link rules against our existing accounts. And what it allows: `private_key_jwt`, linking by
 * a verified e-mail address.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Browser } from '../helpers/browser-driver.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { jwt } from '../helpers/rp.js';
import { accountIdFor } from '../../src/connections/provision.js';
import { SESSION_COOKIE } from '../../src/provider/session-guard.js';
import { startUpstream, UPSTREAM_SECRET, type Upstream } from './oidc-upstream.js';
import { atUpstream, auditRecords, consentAndRedeem, toUpstream, titleOf } from './oidc-flow.js';

const TIMEOUT = 120_000;

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('an OIDC connection refuses, with a readable page', { timeout: TIMEOUT }, () => {
  let upstream: Upstream;
  let t: TestServer;
  const callback = () => t.url('/connections/corp/callback');

  before(async () => {
    upstream = await startUpstream();
    for (const sub of ['ada', 'cat', 'dan']) upstream.people.set(sub, { preferred_username: sub, email: `${sub}@corp.example`, email_verified: true });
    upstream.people.set('eve', { email: 'eve@corp.example', email_verified: false });
    upstream.people.set('bob', { email: 'bob@corp.example', email_verified: true, groups: ['ops'] });
    t = await startServer({
      store: 'sqlite',
      users: { alice: [], ada: [], 'eve@corp.example': [], 'bob@corp.example': ['auditor'] },
      config: {
        connections: [
          // no prompt=consent: the upstream's session signs people in silently (and issues no refresh token)
          { kind: 'oidc', id: 'corp', name: 'Corp SSO', issuer: upstream.issuer, clientId: 'mcp-authz', clientSecret: UPSTREAM_SECRET, promptConsent: false },
          {
            kind: 'oidc',
            id: 'corp-jwt',
            name: 'Corp (key)',
            issuer: upstream.issuer,
            clientId: 'mcp-authz-jwt',
            privateKey: upstream.privateJwk,
            link: 'verified_email',
            scopes: ['email', 'groups'],
            roles: { groups: { ops: ['operator'] } },
          },
          { kind: 'oidc', id: 'gone', name: 'Gone SSO', issuer: `http://127.0.0.1:${await deadPort()}`, clientId: 'x', clientSecret: 'y' },
        ],
      },
    });
  });
  after(async () => {
    await t?.stop();
    await upstream?.stop();
  });

  test('an upstream that cannot be reached: the server started, the sign-in gets a 502 page; once it answers, the next sign-in goes through', async () => {
    const gone = await toUpstream(new Browser(), t, 'gone');
    assert.equal(gone.page.status, 502);
    assert.equal(titleOf(gone.page), 'Sign-in with Gone SSO failed');
    assert.match(gone.page.html, /Gone SSO could not be reached/);

    // the test upstream answers 503 until it is set up: discovery fails, and is tried again
    const early = await toUpstream(new Browser(), t, 'corp');
    assert.equal(early.page.status, 502);
    assert.match(early.page.html, /Corp SSO could not be reached/);
    await upstream.register([callback(), t.url('/connections/corp-jwt/callback')]);
    const browser = new Browser();
    const later = await toUpstream(browser, t, 'corp');
    assert.equal(later.page.status, 200);
    assert.ok(later.page.url.startsWith(`${upstream.issuer}/interaction/`), later.page.url);
    await consentAndRedeem(browser, await atUpstream(browser, later.page, 'cat'), later.request);
    assert.ok(t.logs.some((l) => /discovery_failed/.test(String(l.reason ?? ''))), 'the log says why');
  });

  test('the person cancels at the upstream (error=access_denied): a 403 page, no account', async () => {
    const browser = new Browser();
    const { page } = await toUpstream(browser, t, 'corp');
    const back = await atUpstream(browser, page, 'dan', { cancel: true });
    assert.equal(back.status, 403);
    assert.equal(titleOf(back), 'Sign-in with Corp SSO failed');
    assert.match(back.html, /You did not sign in with Corp SSO/);
    assert.doesNotMatch(back.html, /the person cancelled/, "the upstream's description is not shown");
    assert.ok(t.logs.some((l) => l.reason === 'upstream_refused' && l.upstreamError === 'access_denied'));
    await t.server.audit.flush();
    assert.ok(
      auditRecords(t).some(
        (r) => r.event === 'login.failed' && r.client === 'web-app' && r.details?.connection === 'corp' && r.details?.reason === 'upstream_refused' && r.details?.upstreamError === 'access_denied',
      ),
    );
    assert.equal(await t.server.store.accounts.findById(accountIdFor('corp', 'dan')), undefined);
  });

  test('a callback replayed (same state twice), with a forged state, or without one: refused; the first use still works', async () => {
    const browser = new Browser();
    const { page, request } = await toUpstream(browser, t, 'corp');
    const stopped = await atUpstream(browser, page, 'dan', { stopAt: callback() });
    const answer = stopped.url;
    assert.ok(answer.startsWith(`${callback()}?code=`), answer);

    const forged = new URL(answer);
    forged.searchParams.set('state', 'forged-state-value');
    let refused = await browser.go(forged.href);
    assert.equal(refused.status, 400);
    assert.equal(titleOf(refused), 'Sign-in expired');
    forged.searchParams.delete('state');
    refused = await browser.go(forged.href);
    assert.equal(refused.status, 400);

    const consent = await browser.go(answer);
    await consentAndRedeem(browser, consent, request);
    assert.ok(await t.server.store.accounts.findById(accountIdFor('corp', 'dan')));

    const replayed = await browser.go(answer);
    assert.equal(replayed.status, 400);
    assert.equal(titleOf(replayed), 'Sign-in expired');
  });

  test('a callback opened in another browser than the one that started the sign-in (login CSRF): refused, nobody signed in, no account', async () => {
    const attacker = new Browser();
    const { page } = await toUpstream(attacker, t, 'corp');
    const answer = (await atUpstream(attacker, page, 'ada', { stopAt: callback() })).url;
    const victim = new Browser();
    await toUpstream(victim, t, 'corp'); // the victim is in a sign-in of their own
    const landed = await victim.go(answer);
    assert.equal(landed.status, 400);
    assert.equal(titleOf(landed), 'Sign-in expired');
    assert.equal(await t.server.store.accounts.findById(accountIdFor('corp', 'ada')), undefined);
  });

  test('the hand-off back to the interaction is single-use, and only for its browser and connection', async () => {
    let browser = new Browser();
    let flow = await toUpstream(browser, t, 'corp');
    let done = (await atUpstream(browser, flow.page, 'cat', { stopAt: `${t.issuer}/interaction/` })).url;
    assert.match(done, /\/interaction\/[^/]+\/connection\/corp\/done\?handoff=/);
    const elsewhere = await new Browser().go(done);
    assert.equal(elsewhere.status, 400, 'another browser cannot use it');
    await consentAndRedeem(browser, await browser.go(done), flow.request);
    const again = await browser.go(done);
    assert.equal(again.status, 400, 'nor can it be used twice');
    assert.equal(titleOf(again), 'Sign-in expired');

    browser = new Browser();
    flow = await toUpstream(browser, t, 'corp');
    done = (await atUpstream(browser, flow.page, 'cat', { stopAt: `${t.issuer}/interaction/` })).url;
    const otherConnection = await browser.go(done.replace('/connection/corp/', '/connection/corp-jwt/'));
    assert.equal(otherConnection.status, 400, 'nor for another connection');
  });

  test('signed out of us but not of the upstream, a sign-in goes through its session; with prompt=login at us, the upstream asks again', async () => {
    const browser = new Browser();
    const signOutOfUs = () => {
      for (const [key, cookie] of browser.jar.cookies) if (cookie.name.startsWith(SESSION_COOKIE)) browser.jar.cookies.delete(key);
    };
    let flow = await toUpstream(browser, t, 'corp');
    await consentAndRedeem(browser, await atUpstream(browser, flow.page, 'cat'), flow.request);
    signOutOfUs();
    flow = await toUpstream(browser, t, 'corp');
    await consentAndRedeem(browser, flow.page, flow.request); // no upstream form this time
    signOutOfUs();
    flow = await toUpstream(browser, t, 'corp', 'notes:read', 'web-app', { prompt: 'login' });
    assert.ok(flow.page.url.startsWith(`${upstream.issuer}/interaction/`), 'the upstream shows its sign-in again');
    await consentAndRedeem(browser, await atUpstream(browser, flow.page, 'cat'), flow.request);
  });

  test("link 'never': an upstream person named like an existing local account is refused; the local account is untouched", async () => {
    const before = await t.server.store.accounts.findByUsername('ada');
    const browser = new Browser();
    const { page } = await toUpstream(browser, t, 'corp');
    const back = await atUpstream(browser, page, 'ada');
    assert.equal(back.status, 403);
    assert.equal(titleOf(back), 'Cannot sign in');
    assert.match(back.html, /already exists here and is not linked/);
    assert.deepEqual(await t.server.store.accounts.findByUsername('ada'), before);
    assert.ok(t.logs.some((l) => l.event === 'login.failed' && l.reason === 'username_taken'));
  });

  test("link 'verified_email' over private_key_jwt: an unverified address does not link (refused), a verified one signs in to the existing account, which keeps its roles and gets the group's", async () => {
    let browser = new Browser();
    let flow = await toUpstream(browser, t, 'corp-jwt');
    const refused = await atUpstream(browser, flow.page, 'eve');
    assert.equal(refused.status, 403);
    assert.match(refused.html, /already exists here and is not linked/);
    assert.equal((await t.server.store.accounts.findByUsername('eve@corp.example'))?.connection, undefined);

    browser = new Browser();
    flow = await toUpstream(browser, t, 'corp-jwt');
    const tokens = await consentAndRedeem(browser, await atUpstream(browser, flow.page, 'bob'), flow.request);
    const local = await t.server.store.accounts.findByUsername('bob@corp.example');
    assert.equal(jwt(tokens.access_token).payload.sub, local!.id, 'signed in to the local account');
    assert.deepEqual([...local!.roles].sort(), ['auditor', 'operator']);
    assert.equal(await t.server.store.accounts.findById(accountIdFor('corp-jwt', 'bob')), undefined, 'no second account');
  });
});
