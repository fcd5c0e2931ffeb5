/**
 * An upstream served over https (the tests' CA, test/fixtures/tls): used with its certificate
 * verified, the way every non-loopback upstream is — signed in through when the certificate
 * names the host, refused with a 502 page (nothing asked of it beyond the TLS handshake) when
 * it does not.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Browser } from '../helpers/browser-driver.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { consentAndRedeem, titleOf, toUpstream } from './oidc-flow.js';
import { ROGUE_CLIENT, ROGUE_SECRET, startRogue, type Rogue } from './rogue-op.js';

const TLS = new URL('../../../test/fixtures/tls/', import.meta.url);

describe('an OIDC connection to an https upstream', { timeout: 120_000 }, () => {
  let trusted: Rogue;
  let misnamed: Rogue;
  let t: TestServer;

  before(async () => {
    const tls = { key: readFileSync(new URL('localhost.key', TLS), 'utf8'), cert: readFileSync(new URL('localhost.pem', TLS), 'utf8') };
    // the certificate names localhost, 127.0.0.1 and ::1 — not 127.0.0.2
    [trusted, misnamed] = await Promise.all([startRogue({ tls }), startRogue({ tls, host: '127.0.0.2' })]);
    const connection = (id: string, rogue: Rogue) => ({ kind: 'oidc' as const, id, name: id, issuer: rogue.issuer, clientId: ROGUE_CLIENT, clientSecret: ROGUE_SECRET });
    t = await startServer({ store: 'sqlite', config: { connections: [connection('trusted', trusted), connection('misnamed', misnamed)] } });
    trusted.claims = { preferred_username: 'tess' };
    trusted.subject = 'tess';
  });
  after(async () => {
    await t?.stop();
    await trusted?.stop();
    await misnamed?.stop();
  });

  test('a certificate naming the host: the sign-in goes through', async () => {
    assert.ok(trusted.issuer.startsWith('https://127.0.0.1:'));
    const browser = new Browser();
    const { page, request } = await toUpstream(browser, t, 'trusted');
    await consentAndRedeem(browser, page, request);
  });

  test('a certificate not naming the host: a 502 page, and the log says the certificate was refused', async () => {
    const { page } = await toUpstream(new Browser(), t, 'misnamed');
    assert.equal(page.status, 502);
    assert.equal(titleOf(page), 'Sign-in with misnamed failed');
    assert.equal(misnamed.lastAuthorization, undefined, 'the browser was never sent there');
    const logged = t.logs.find((l) => l.connection === 'misnamed' && /discovery_failed/.test(String(l.reason)));
    assert.match(String(logged?.reason), /cause=ERR_TLS_CERT_ALTNAME_INVALID/);
  });
});
