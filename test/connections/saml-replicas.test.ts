/**
 * SAML sign-in across replicas: two `mcp-authz serve` processes on one Redis behind the test
 * balancer. The AuthnRequest is sent by replica A and the identity provider's answer reaches
 * replica B, which accepts it (the request id is in the shared store, not in A's memory) and
 * finishes the sign-in to a token; the same answer posted again to A is refused (the request
 * was taken by B).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, findForm } from '../helpers/browser-driver.js';
import { NOTES, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { startReplicaSet, type ReplicaSet } from '../helpers/replicas.js';
import { client, jwt } from '../helpers/rp.js';
import { buildResponse, decodeAuthnRequest, encodeResponse, makeSigningKey, TestIdp } from '../helpers/saml-idp.js';
import { accountIdFor } from '../../src/connections/provision.js';
import type { ConfigInput } from '../../src/config/schema.js';

const A = 0;
const B = 1;

describe('SAML sign-in across replicas on Redis', { timeout: 180_000 }, () => {
  let set: ReplicaSet;
  let idp: TestIdp;

  before(async () => {
    idp = new TestIdp(makeSigningKey('Test IdP'));
    await idp.start();
    set = await startReplicaSet({
      config: {
        connections: [{ kind: 'saml', id: 'corp', name: 'Corp SSO', entryPoint: idp.entryPoint, idpIssuer: idp.entityId, idpCert: idp.signing.cert }],
      } as Partial<ConfigInput>,
    });
  });
  after(async () => {
    await set?.stop();
    await idp?.stop();
  });

  async function on<T>(index: number, steps: () => Promise<T>): Promise<T> {
    set.balancer.pin(index);
    try {
      return await steps();
    } finally {
      set.balancer.pin(undefined);
    }
  }

  test('the request sent by one replica is answered at the other, once', async () => {
    const auth = await authorizationRequest(set, 'web-app', { scope: 'notes:read', resource: NOTES });
    const browser = new Browser();
    const mark = set.balancer.served.length;
    const request = await on(A, async () => {
      const login = await browser.go(auth.url);
      const href = /<a [^>]*href="([^"]+)"[^>]*data-connection="corp"/.exec(login.html)?.[1];
      assert.ok(href, 'the login page offers the connection');
      return decodeAuthnRequest((await browser.go(new URL(href, login.url).href, {}, idp.entryPoint)).url);
    });
    assert.equal(request.acs, set.url('/connections/corp/saml/acs'));

    const nameId = 'replicated-person';
    const body = new URLSearchParams({
      SAMLResponse: encodeResponse(
        buildResponse({ issuer: idp.entityId, inResponseTo: request.id, acs: request.acs, audience: request.issuer, nameId, attributes: { email: ['rep@corp.example'] }, signAssertion: idp.signing }),
      ),
    }).toString();
    const post = () => fetch(request.acs, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body, redirect: 'manual' });

    const callback = await on(B, async () => {
      const res = await post();
      assert.equal(res.status, 303, (await res.text()).slice(0, 300));
      const consent = await browser.go(new URL(res.headers.get('location')!, set.issuer).href);
      assert.match(consent.html, /Allow access\?/);
      const done = await browser.submit(findForm(consent, '/confirm'), {}, undefined, REDIRECT);
      return new URL(done.url);
    });
    const served = set.balancer.served.slice(mark);
    assert.ok(served.some((s) => s.path.startsWith('/interaction/') && s.path.includes('/connection/corp') && s.backend === A), 'A sent the AuthnRequest');
    assert.ok(served.some((s) => s.method === 'POST' && s.path === '/connections/corp/saml/acs' && s.backend === B), 'B took the answer');

    const tokens = await client.authorizationCodeGrant(auth.config, callback, { pkceCodeVerifier: auth.verifier, expectedState: auth.state });
    assert.equal(jwt(tokens.access_token).payload.sub, accountIdFor('corp', nameId));

    const replay = await on(A, post);
    assert.equal(replay.status, 400);
    assert.match(await replay.text(), /Sign-in with Corp SSO failed/);
  });
});
