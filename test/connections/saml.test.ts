/**
 * Sign-in through a SAML 2.0 identity provider, against a real one built in the test from a
 * signing key (test/helpers/saml-idp.ts): the whole path in headless Chromium (MCP client →
 * our login page → the identity provider → a cross-site POST to our ACS → consent to a scope
 * allowed by a group's role → code → token), and every kind of bad answer posted straight to
 * the ACS after a real sign-in began — each refused with a readable page and a `login.failed`
 * record naming the connection and the reason, never a 500.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Browser as Chromium, Request } from 'playwright-core';
import { collectCspViolations, launchBrowser } from '../helpers/browser.js';
import { Browser } from '../helpers/browser-driver.js';
import { fixtureConfig, NOTES, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest, type AuthorizationRequest } from '../helpers/flows.js';
import { client, jwt } from '../helpers/rp.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { buildResponse, decodeAuthnRequest, encodeResponse, makeSigningKey, redirectSignatureValid, TestIdp, type AuthnRequestSeen, type ResponseOptions, type SigningKey } from '../helpers/saml-idp.js';
import { accountIdFor } from '../../src/connections/provision.js';
import { SeenAssertions } from '../../src/connections/saml/seen-assertions.js';
import { childElements, parseXml } from '../../src/connections/saml/xml-dom.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { parseConfig } from '../../src/config/load.js';
import { createServer } from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const METADATA_NS = 'urn:oasis:names:tc:SAML:2.0:metadata';
const PARTNER_AUDIENCE = 'urn:mcp-authz:test:partner';
const MAPPED_AUDIENCE = 'urn:mcp-authz:test:mapped';
const CLAIM_EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const CLAIM_GROUPS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups';
const FINANCE_USER = {
  nameId: 'f9c1d2e3-finance-person',
  attributes: { email: ['fiona@corp.example'], displayName: ['Fiona Finance'], groups: ['staff', 'finance-team'] },
};

type AuditRecord = { event: string; requestId?: string; client?: string; details?: Record<string, unknown> };

describe('SAML connection', { timeout: 180_000 }, () => {
  let t: TestServer;
  let idp: TestIdp;
  let chromium: Chromium | undefined;
  let idpKey: SigningKey;
  /** a key the connection lists too (a certificate being rolled over) */
  let retiredKey: SigningKey;
  /** a key nobody trusts */
  let strangerKey: SigningKey;
  /** our request-signing key (the `partner` connection) */
  let spKey: SigningKey;

  function config(): Partial<ConfigInput> {
    const base = fixtureConfig();
    const [notes, ...others] = base.resources!;
    const common = { entryPoint: idp.entryPoint, idpIssuer: idp.entityId };
    return {
      clients: base.clients!,
      resources: [
        {
          ...notes!,
          scopes: {
            'notes:read': { description: 'Read your notes' },
            'notes:ledger': { description: 'Read the finance ledger', allow: ['role:finance'] },
          },
        },
        ...others,
      ],
      connections: [
        {
          kind: 'saml',
          id: 'corp',
          name: 'Corp SSO',
          ...common,
          idpCert: [retiredKey.cert, idpKey.cert],
          domains: ['corp.example'],
          roles: { default: [], groups: { 'finance-team': ['finance'] } },
        },
        {
          kind: 'saml',
          id: 'partner',
          name: 'Partner SSO',
          ...common,
          idpCert: idpKey.cert,
          audience: PARTNER_AUDIENCE,
          signRequests: { privateKey: spKey.key, cert: spKey.cert },
          requireSignedResponse: true,
        },
        {
          kind: 'saml',
          id: 'mapped',
          name: 'Mapped SSO',
          ...common,
          idpCert: idpKey.cert,
          audience: MAPPED_AUDIENCE,
          // an identity provider with its own attribute names (AD FS's claim URIs)
          attributes: { username: 'uid', email: CLAIM_EMAIL, name: 'http://schemas.xmlsoap.org/claims/CommonName', groups: CLAIM_GROUPS },
          roles: { default: [], groups: { 'Finance Team': ['finance'] } },
        },
      ],
      // this file posts many refused answers from one address on purpose; the limit on them is
      // tested below with a server of its own
      rateLimits: { signInPerSource: { max: 1000, window: 900 } },
    } as Partial<ConfigInput>;
  }

  before(async () => {
    [idpKey, retiredKey, strangerKey, spKey] = ['Test IdP', 'Retired IdP key', 'Stranger', 'mcp-authz SP'].map(makeSigningKey) as [SigningKey, SigningKey, SigningKey, SigningKey];
    idp = new TestIdp(idpKey);
    await idp.start();
    t = await startServer({ store: 'sqlite', config: config() });
  });
  after(async () => {
    await chromium?.close();
    await t?.stop();
    await idp?.stop();
  });

  const acsUrl = (connection = 'corp') => t.url(`/connections/${connection}/saml/acs`);
  const entityId = (connection = 'corp') => t.url(`/connections/${connection}/saml/metadata`);

  /** Starts a real sign-in (authorization request → login page → the connection) up to the AuthnRequest. */
  async function beginSignIn(connection = 'corp'): Promise<{ browser: Browser; auth: AuthorizationRequest; request: AuthnRequestSeen }> {
    const auth = await authorizationRequest(t, 'web-app', { scope: 'notes:read notes:ledger', resource: NOTES });
    const browser = new Browser();
    const login = await browser.go(auth.url);
    assert.equal(login.status, 200, 'the login page');
    const href = new RegExp(`<a [^>]*href="([^"]+)"[^>]*data-connection="${connection}"`).exec(login.html)?.[1];
    assert.ok(href, `the login page offers ${connection}`);
    const sent = await browser.go(new URL(href, login.url).href, {}, idp.entryPoint);
    return { browser, auth, request: decodeAuthnRequest(sent.url) };
  }

  /** A response to `request` as the identity provider would make it, with `changes`. */
  function answer(request: AuthnRequestSeen, changes: Partial<ResponseOptions> = {}): string {
    return buildResponse({
      issuer: idp.entityId,
      inResponseTo: request.id,
      acs: request.acs,
      audience: request.issuer,
      nameId: FINANCE_USER.nameId,
      attributes: FINANCE_USER.attributes,
      signAssertion: idpKey,
      ...changes,
    });
  }

  async function postAcs(body: string, headers: Record<string, string> = FORM, connection = 'corp'): Promise<Response> {
    return fetch(acsUrl(connection), { method: 'POST', headers: { accept: 'text/html', ...headers }, body, redirect: 'manual' });
  }
  const postResponse = (xml: string, connection = 'corp') => postAcs(new URLSearchParams({ SAMLResponse: encodeResponse(xml) }).toString(), FORM, connection);

  async function auditRecords(): Promise<AuditRecord[]> {
    await t.server.audit.flush();
    const dir = join(t.dataDir, 'audit');
    return readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as AuditRecord);
  }

  /** The answer was refused: a readable page, no stack, and a login.failed record with the reason. */
  async function assertRefused(res: Response, reason: string, status = 400, connection = 'corp'): Promise<AuditRecord> {
    const html = await res.text();
    assert.equal(res.status, status, html.slice(0, 300));
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(html, /Sign-in with (Corp|Partner) SSO failed/);
    assert.doesNotMatch(html, /\bat [\w.<>]+ \(|node_modules|\.js:\d+/, 'no stack trace');
    const requestId = res.headers.get('x-request-id');
    assert.ok(requestId);
    const record = (await auditRecords()).find((r) => r.event === 'login.failed' && r.requestId === requestId);
    assert.ok(record, 'a login.failed audit record for this request');
    assert.equal(record.details?.connection, connection);
    assert.equal(record.details?.method, 'saml');
    assert.equal(record.details?.reason, reason);
    return record;
  }

  /** The answer was accepted: on to the interaction, which (with the browser's cookies) reaches consent. */
  async function assertAccepted(res: Response, browser: Browser): Promise<void> {
    assert.equal(res.status, 303, (await res.clone().text()).slice(0, 300));
    const location = res.headers.get('location') ?? '';
    assert.match(location, /\/interaction\/[^/]+\/connection\/(corp|partner|mapped)\/done\?handoff=/);
    const page = await browser.go(new URL(location, t.issuer).href);
    assert.equal(page.status, 200, page.html.slice(0, 300));
    assert.match(page.html, /Allow access\?/);
  }

  test('in headless Chromium: MCP client → login page → identity provider → ACS → consent with a group’s role → token', async () => {
    chromium = await launchBrowser();
    const context = await chromium.newContext();
    const page = await context.newPage();
    try {
      idp.user = FINANCE_USER;
      const violations = await collectCspViolations(page);
      const request = await authorizationRequest(t, 'web-app', { scope: 'notes:read notes:ledger', resource: NOTES });
      const acsPosts: Request[] = [];
      page.on('request', (r) => {
        if (r.method() === 'POST' && r.url() === acsUrl()) acsPosts.push(r);
      });
      await page.goto(request.url);
      await Promise.all([page.waitForURL((u) => u.pathname.includes('/interaction/') && !u.pathname.includes('/connection/'), { timeout: 30_000 }), page.click('a[data-connection="corp"]')]);
      assert.equal(((await page.textContent('h1')) ?? '').trim(), 'Allow access?');

      // the identity provider got our AuthnRequest and posted back from another site, without our cookies
      assert.equal(idp.requests.length >= 1, true);
      const seen = idp.requests.at(-1)!;
      assert.equal(seen.acs, acsUrl());
      assert.equal(seen.issuer, entityId());
      assert.equal(acsPosts.length, 1, 'one POST to the ACS');
      const headers = await acsPosts[0]!.allHeaders();
      assert.match(headers.origin ?? headers.referer ?? '', /^http:\/\/localhost:/, 'posted from the identity provider’s site');
      assert.doesNotMatch(headers.cookie ?? '', /mcp_authz_interaction/, 'the cross-site POST carries no interaction cookie');

      // the finance group's role makes the restricted scope available
      const ledger = page.locator('label.scope:has(.scope-name:text-is("notes:ledger")) input[type="checkbox"]');
      assert.equal(await ledger.isDisabled(), false, 'notes:ledger is available through the finance role');
      if (!(await ledger.isChecked())) await ledger.check();
      const redirected = page.waitForRequest((r) => r.url().startsWith(REDIRECT));
      await page.click('button:text("Allow")');
      const callback = new URL((await redirected).url());
      assert.deepEqual(violations, [], 'no CSP violation on the way');
      const tokens = await client.authorizationCodeGrant(request.config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state });
      const claims = jwt(tokens.access_token).payload;
      assert.equal(claims.sub, accountIdFor('corp', FINANCE_USER.nameId), 'sub is the account derived from the connection and the NameID');
      assert.deepEqual(String(claims.scope).split(' ').sort(), ['notes:ledger', 'notes:read']);

      const account = await t.server.store.accounts.findById(String(claims.sub));
      assert.equal(account?.connection, 'corp');
      assert.deepEqual(account?.roles, ['finance']);
      assert.equal(account?.email, 'fiona@corp.example');
      assert.equal(account?.displayName, 'Fiona Finance');

      const records = await auditRecords();
      assert.ok(records.some((r) => r.event === 'account.provisioned' && r.details?.connection === 'corp' && r.details?.accountId === claims.sub));
      assert.ok(records.some((r) => r.event === 'login.succeeded' && r.details?.connection === 'corp' && r.details?.method === 'saml'));
    } finally {
      await context.close();
    }
  });

  test('a well-formed signed answer posted directly is accepted (the control for the refusals below)', async () => {
    const { browser, request } = await beginSignIn();
    await assertAccepted(await postResponse(answer(request)), browser);
  });

  test('a second sign-in reuses the account and sets its roles again from the groups', async () => {
    const person = { nameId: 'r0les-again-person', attributes: { email: ['rolf@corp.example'], groups: ['finance-team'] } };
    let { browser, request } = await beginSignIn();
    await assertAccepted(await postResponse(answer(request, person)), browser);
    const id = accountIdFor('corp', person.nameId);
    assert.deepEqual((await t.server.store.accounts.findById(id))?.roles, ['finance']);
    ({ browser, request } = await beginSignIn());
    await assertAccepted(await postResponse(answer(request, { ...person, attributes: { ...person.attributes, groups: ['staff'] } })), browser);
    const account = await t.server.store.accounts.findById(id);
    assert.deepEqual(account?.roles, [], 'out of the finance group: the role is gone');
    assert.equal(account?.email, 'rolf@corp.example');
  });

  test('attributes under other names (attributes.username/email/name/groups) give the username, e-mail, name and roles', async () => {
    const nameId = 'mapped-person-1';
    const { browser, request } = await beginSignIn('mapped');
    const xml = answer(request, {
      nameId,
      attributes: {
        uid: ['mona.mapped'],
        [CLAIM_EMAIL]: ['mona@corp.example'],
        'http://schemas.xmlsoap.org/claims/CommonName': ['Mona Mapped'],
        [CLAIM_GROUPS]: ['Staff', 'Finance Team'],
        // the default names, which this connection does not read
        email: ['wrong@corp.example'],
        displayName: ['Wrong Name'],
        groups: ['finance-team'],
      },
    });
    await assertAccepted(await postResponse(xml, 'mapped'), browser);
    const account = await t.server.store.accounts.findById(accountIdFor('mapped', nameId));
    assert.ok(account, 'provisioned');
    assert.equal(account.username, 'mona.mapped');
    assert.equal(account.email, 'mona@corp.example');
    assert.equal(account.displayName, 'Mona Mapped');
    assert.deepEqual(account.roles, ['finance'], 'Finance Team, from the groups claim, maps to finance');
  });

  test('a transient NameID, or a response whose status is not Success, is refused', async () => {
    let { request } = await beginSignIn();
    await assertRefused(await postResponse(answer(request, { nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient' })), 'saml_transient_nameid');
    ({ request } = await beginSignIn());
    await assertRefused(await postResponse(answer(request, { status: 'urn:oasis:names:tc:SAML:2.0:status:Requester' })), 'saml_idp_refused');
  });

  test('an assertion changed after signing is refused', async () => {
    const { request } = await beginSignIn();
    const signed = answer(request);
    const tampered = signed.replace('>finance-team<', '>admins<');
    assert.notEqual(tampered, signed);
    const record = await assertRefused(await postResponse(tampered), 'saml_invalid_signature');
    assert.equal(record.client, 'web-app', 'the record names the client the sign-in was for');
  });

  test('an unsigned assertion is refused', async () => {
    const { request } = await beginSignIn();
    await assertRefused(await postResponse(answer(request, { signAssertion: null })), 'saml_invalid_signature');
  });

  test('a signed response whose assertion is unsigned is refused', async () => {
    const { request } = await beginSignIn();
    await assertRefused(await postResponse(answer(request, { signAssertion: null, signResponse: idpKey })), 'saml_invalid_signature');
  });

  test('an assertion signed by a key the connection does not trust is refused', async () => {
    const { request } = await beginSignIn();
    await assertRefused(await postResponse(answer(request, { signAssertion: strangerKey })), 'saml_invalid_signature');
  });

  test('an assertion signed with another listed certificate (a rollover) is accepted', async () => {
    const { browser, request } = await beginSignIn();
    await assertAccepted(await postResponse(answer(request, { signAssertion: retiredKey })), browser);
  });

  test('the same answer posted twice is refused the second time', async () => {
    const { browser, request } = await beginSignIn();
    const xml = answer(request);
    await assertAccepted(await postResponse(xml), browser);
    await assertRefused(await postResponse(xml), 'saml_unsolicited');
  });

  test('an assertion ID is remembered in the store: the second use is refused', async () => {
    const seen = new SeenAssertions(t.server.store, 'corp');
    const id = `_${Date.now()}-assertion`;
    assert.equal(await seen.remember(id, Date.now() + 60_000), true);
    assert.equal(await seen.remember(id, Date.now() + 60_000), false);
    assert.equal(await new SeenAssertions(t.server.store, 'partner').remember(id, Date.now() + 60_000), true, 'per connection');
  });

  test('an assertion ID already used is refused in answer to a fresh request (the replay cache, not the request ledger)', async () => {
    const assertionId = `_${Date.now()}-used-once`;
    const first = await beginSignIn();
    await assertAccepted(await postResponse(answer(first.request, { assertionId })), first.browser);
    // a new AuthnRequest, so InResponseTo is pending and right: only the assertion ID gives it away
    const { request } = await beginSignIn();
    assert.notEqual(request.id, first.request.id);
    await assertRefused(await postResponse(answer(request, { assertionId })), 'saml_replayed');
  });

  test('an assertion not valid yet (NotBefore past the allowed clock skew) is refused; within the skew it is accepted', async () => {
    let { request } = await beginSignIn();
    await assertRefused(await postResponse(answer(request, { notBefore: new Date(Date.now() + 5 * 60_000) })), 'saml_expired');
    let browser;
    ({ browser, request } = await beginSignIn());
    // the connection allows 60 s of skew: 30 s ahead is still accepted
    await assertAccepted(await postResponse(answer(request, { notBefore: new Date(Date.now() + 30_000) })), browser);
  });

  test('an assertion for another audience is refused', async () => {
    const { request } = await beginSignIn();
    await assertRefused(await postResponse(answer(request, { audience: 'https://other-sp.example/saml' })), 'saml_wrong_audience');
  });

  test('an answer to no request of ours (wrong InResponseTo, or none) is refused', async () => {
    const { request } = await beginSignIn();
    await assertRefused(await postResponse(answer(request, { inResponseTo: '_0123456789abcdef0123456789abcdef01234567' })), 'saml_unsolicited');
    await assertRefused(await postResponse(answer(request, { inResponseTo: undefined, subjectInResponseTo: null })), 'saml_unsolicited');
    const other = await beginSignIn();
    // the response names a pending request, the signed assertion another one
    await assertRefused(await postResponse(answer(other.request, { subjectInResponseTo: request.id })), 'saml_unsolicited');
  });

  test('an expired assertion is refused', async () => {
    const { request } = await beginSignIn();
    const past = new Date(Date.now() - 5 * 60_000);
    await assertRefused(await postResponse(answer(request, { notOnOrAfter: past, notBefore: new Date(past.getTime() - 60_000) })), 'saml_expired');
  });

  test('an assertion for another recipient, or from another issuer, is refused', async () => {
    let { request } = await beginSignIn();
    await assertRefused(await postResponse(answer(request, { recipient: 'https://other-sp.example/acs' })), 'saml_wrong_recipient');
    ({ request } = await beginSignIn());
    await assertRefused(await postResponse(answer(request, { issuer: 'https://evil-idp.example/saml' })), 'saml_wrong_issuer');
  });

  test('garbage is a 4xx page, never a 500', async () => {
    await assertRefused(await postAcs('SAMLResponse=%%%not-base64%%%'), 'saml_malformed');
    await assertRefused(await postAcs('RelayState=x'), 'saml_malformed');
    await assertRefused(await postAcs(`SAMLResponse=${encodeURIComponent(Buffer.from('hello, world').toString('base64'))}`), 'saml_malformed');
    await assertRefused(await postAcs(`SAMLResponse=${encodeURIComponent(Buffer.from('<samlp:Response><unclosed').toString('base64'))}`), 'saml_invalid_response');
    const laughs = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><Response>&lol2;</Response>';
    await assertRefused(await postAcs(`SAMLResponse=${encodeURIComponent(Buffer.from(laughs).toString('base64'))}`), 'saml_malformed');
    await assertRefused(await postAcs(JSON.stringify({ SAMLResponse: 'x' }), { 'content-type': 'application/json' }), 'saml_malformed', 415);
    await assertRefused(await postAcs(`SAMLResponse=${'A'.repeat(300 * 1024)}`), 'saml_malformed', 413);
    const metadataPost = await fetch(t.url('/connections/corp/saml/metadata'), { method: 'POST', body: 'x', headers: FORM });
    assert.ok(metadataPost.status >= 400 && metadataPost.status < 500);
  });

  test('a signed AuthnRequest, and a connection requiring a signed response', async () => {
    const { browser, request } = await beginSignIn('partner');
    assert.equal(request.issuer, PARTNER_AUDIENCE, 'our entity id is the configured audience');
    assert.equal(request.acs, acsUrl('partner'));
    assert.equal(redirectSignatureValid(request, spKey.cert), true, 'the Redirect-binding signature verifies with our certificate');
    assert.equal(redirectSignatureValid(request, strangerKey.cert), false);
    // only the assertion signed: not enough here
    await assertRefused(await postResponse(answer(request), 'partner'), 'saml_invalid_signature', 400, 'partner');
    const again = await beginSignIn('partner');
    // (another person: the finance person's username belongs to their `corp` account, and `link` is `never`)
    await assertAccepted(await postResponse(answer(again.request, { signResponse: idpKey, nameId: 'partner-person-7' }), 'partner'), again.browser);
    void browser;
  });

  test('the metadata is well-formed XML naming our entity id and ACS (and the request-signing certificate)', async () => {
    for (const [connection, entity] of [
      ['corp', entityId('corp')],
      ['partner', PARTNER_AUDIENCE],
    ] as const) {
      const res = await fetch(t.url(`/connections/${connection}/saml/metadata`));
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^application\/samlmetadata\+xml/);
      const root = parseXml(await res.text());
      assert.ok(root, 'well-formed');
      assert.equal(root.localName, 'EntityDescriptor');
      assert.equal(root.namespaceURI, METADATA_NS);
      assert.equal(root.getAttribute('entityID'), entity);
      const sp = childElements(root, METADATA_NS, 'SPSSODescriptor')[0];
      assert.ok(sp);
      assert.equal(sp.getAttribute('WantAssertionsSigned'), 'true');
      const acs = childElements(sp, METADATA_NS, 'AssertionConsumerService')[0];
      assert.equal(acs?.getAttribute('Location'), acsUrl(connection));
      assert.equal(acs?.getAttribute('Binding'), 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
      const keys = childElements(sp, METADATA_NS, 'KeyDescriptor');
      if (connection === 'partner') {
        assert.equal(sp.getAttribute('AuthnRequestsSigned'), 'true');
        const certText = spKey.cert.replace(/-----[A-Z ]+-----|\s/g, '');
        assert.equal(keys.length, 1);
        assert.equal((keys[0]!.textContent ?? '').replace(/\s/g, ''), certText);
      } else {
        assert.equal(keys.length, 0);
      }
    }
  });

  test('an e-mail address on the connection’s domain (login_hint) goes straight to the identity provider', async () => {
    const auth = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES, login_hint: 'fiona@corp.example' });
    const sent = await new Browser().go(auth.url, {}, idp.entryPoint);
    assert.ok(sent.url.startsWith(idp.entryPoint), 'at the identity provider');
    assert.equal(decodeAuthnRequest(sent.url).acs, acsUrl());
  });

  test('a certificate that cannot be read stops the start, naming the setting and not the value', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-saml-bad-'));
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    try {
      const config = parseConfig({
        ...fixtureConfig(),
        issuer: 'http://127.0.0.1:9',
        dataDir,
        connections: [{ kind: 'saml', id: 'broken', name: 'Broken', entryPoint: 'https://idp.example/sso', idpIssuer: 'https://idp.example', idpCert: 'MIIBnot-really-a-certificate' }],
      });
      await assert.rejects(createServer(config, { logger: createLogger('error', sink) }), (err: Error) => {
        assert.match(err.message, /connections\[broken\]\.idpCert is not an X\.509 certificate/);
        assert.doesNotMatch(err.message, /MIIB/);
        return true;
      });
      assert.doesNotMatch(lines.join(''), /MIIB/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('refused answers count as failed sign-ins from their source: past signInPerSource, 429 with Retry-After before anything is read', async () => {
    const limited = await startServer({
      store: 'sqlite',
      config: {
        ...fixtureConfig(),
        rateLimits: { signInPerSource: { max: 3, window: 900 } },
        connections: [{ kind: 'saml', id: 'corp', name: 'Corp SSO', entryPoint: idp.entryPoint, idpIssuer: idp.entityId, idpCert: idpKey.cert }],
      } as Partial<ConfigInput>,
    });
    try {
      const post = () => fetch(limited.url('/connections/corp/saml/acs'), { method: 'POST', headers: { accept: 'text/html', ...FORM }, body: 'SAMLResponse=%%%not-base64%%%', redirect: 'manual' });
      for (let i = 0; i < 3; i++) assert.equal((await post()).status, 400, `refusal ${i + 1} is read and refused`);
      const over = await post();
      assert.equal(over.status, 429);
      assert.ok(Number(over.headers.get('retry-after')) > 0);
      assert.match(await over.text(), /Too many failed sign-ins from here/);
      await limited.server.audit.flush();
      const records = readFileSync(join(limited.dataDir, 'audit', readdirSync(join(limited.dataDir, 'audit')).find((f) => f.endsWith('.jsonl'))!), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as AuditRecord);
      assert.equal(records.filter((r) => r.event === 'login.failed' && r.details?.connection === 'corp').length, 3, 'the limited post writes no login.failed');
      assert.ok(records.some((r) => r.event === 'rate_limit.hit' && r.details?.limit === 'signInPerSource'));
    } finally {
      await limited.stop();
    }
  });

  test('no assertion, signature or SAMLResponse reaches the log', async () => {
    const { browser, request } = await beginSignIn();
    const xml = answer(request);
    await assertAccepted(await postResponse(xml), browser);
    const signature = /<ds:SignatureValue>([^<]+)</.exec(xml)?.[1] ?? /SignatureValue>([^<]+)</.exec(xml)?.[1];
    assert.ok(signature);
    const logText = JSON.stringify(t.logs);
    for (const needle of [signature.slice(0, 40), encodeResponse(xml).slice(0, 60), 'AttributeValue', FINANCE_USER.nameId]) {
      assert.equal(logText.includes(needle), false, `the log holds ${needle.slice(0, 20)}…`);
    }
    const auditText = JSON.stringify(await auditRecords());
    assert.equal(auditText.includes(signature.slice(0, 40)), false);
    assert.equal(auditText.includes('AttributeValue'), false);
  });
});
