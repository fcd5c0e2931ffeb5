/**
 * Set-up B: the authorization server on plain HTTP behind a TLS-terminating reverse proxy
 * (node:https → node:http, forwarding X-Forwarded-Proto/-For/-Host as nginx does), issuer the
 * proxy's https://localhost:<port>, `trustProxy: true` — the deployment docs/deployment.md
 * recommends. Then the same proxy in front of a second server started without `trustProxy`:
 * what TRUST_PROXY changes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { httpsChecks } from './checks.js';
import {
  authorizationUrl,
  fetchTls,
  heading,
  launchTrustingBrowser,
  makePki,
  pkce,
  PROXY_ADDRESS,
  requireTools,
  startBehindProxy,
  startProxy,
  watch,
  type Pki,
  type Proxy,
  type RunningServer,
} from './support.js';
import { SECRET } from '../helpers/fixtures.js';
import { readAuditLog } from '../helpers/audit-records.js';

/** A client credentials token through the proxy; returns the audit record's `source` for it. */
async function tokenSource(pki: Pki, proxy: Proxy, server: RunningServer, headers: Record<string, string> = {}): Promise<string | undefined> {
  const answer = await fetchTls(pki, `${proxy.origin}/token`, {
    form: { grant_type: 'client_credentials', scope: 'notes:read', resource: 'https://notes.example.com/mcp' },
    headers: { authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}`, ...headers },
  });
  assert.equal(answer.status, 200, answer.body);
  const requestId = String(answer.headers['x-request-id']);
  await server.server.audit.flush();
  const record = readAuditLog(server.dataDir).records.find((r) => r.event === 'token.issued' && (r as { requestId?: string }).requestId === requestId);
  assert.ok(record, `an audit record for request ${requestId}`);
  return (record as { source?: string }).source;
}

describe('https: the server behind a TLS-terminating proxy', { timeout: 90_000 }, () => {
  let pki: Pki | undefined;
  let proxy: Proxy | undefined;
  let running: RunningServer | undefined;
  let browser: Browser | undefined;

  before(async () => {
    requireTools();
    pki = makePki();
    proxy = await startProxy(pki);
    running = await startBehindProxy(proxy.origin, true);
    proxy.target = running.port;
    browser = await launchTrustingBrowser(pki);
  });

  after(async () => {
    await browser?.close();
    await running?.stop();
    await proxy?.close();
    pki?.remove();
  });

  describe('with trustProxy', () => {
    httpsChecks(() => {
      if (!pki || !running || !browser) throw new Error('not started');
      return { site: { issuer: running.issuer, pki }, browser };
    });

    it('the source address is the one the proxy forwarded, not the proxy', async () => {
      assert.equal(await tokenSource(pki!, proxy!, running!), '127.0.0.1');
    });

    // found by this suite (issue #16): koa's ctx.ip with `proxy: true` was the LEFTMOST X-Forwarded-For
    // address, which the client writes itself; now the entry `proxyHops` (1) from the right, the one
    // this proxy appended (as nginx's `$proxy_add_x_forwarded_for` does)
    it('a client cannot choose its source address by sending its own X-Forwarded-For', async () => {
      assert.equal(await tokenSource(pki!, proxy!, running!, { 'x-forwarded-for': '203.0.113.9' }), '127.0.0.1');
    });
  });

  describe('without trustProxy (same proxy, a second server)', () => {
    let plain: RunningServer | undefined;
    before(async () => {
      plain = await startBehindProxy(proxy!.origin, false);
      proxy!.target = plain.port;
    });
    after(async () => {
      proxy!.target = running!.port;
      await plain?.stop();
    });

    it('the source address is the proxy', async () => {
      assert.equal(await tokenSource(pki!, proxy!, plain!), PROXY_ADDRESS);
    });

    it('discovery still names https endpoints at the issuer (they are built from the issuer, never from the request)', async () => {
      const answer = await fetchTls(pki!, `${proxy!.origin}/.well-known/oauth-authorization-server`);
      assert.equal(answer.status, 200);
      const doc = JSON.parse(answer.body) as Record<string, unknown>;
      for (const [k, v] of Object.entries(doc)) if (typeof v === 'string' && k.endsWith('_endpoint')) assert.ok(v.startsWith(`${proxy!.origin}/`), `${k}: ${v}`);
    });

    it('the token endpoint (no cookies) works', async () => {
      await tokenSource(pki!, proxy!, plain!);
    });

    // What the server does without TRUST_PROXY behind a TLS proxy, as it is (issue #16): the request
    // looks like plain http to koa, and the first Secure cookie (oidc-provider's interaction cookie)
    // throws in `cookies` ("Cannot send secure cookie over unencrypted connection"): a generic 500
    // page, no cookie at all (neither Secure nor not). No one can sign in; the log line says what to set.
    it('a browser cannot start a sign-in: the authorization endpoint answers the generic 500 page and sets no cookie', async () => {
      const context = await browser!.newContext({ ignoreHTTPSErrors: false });
      context.setDefaultTimeout(10_000);
      try {
        const page = await context.newPage();
        const seen = watch(page, proxy!.origin);
        const doc = JSON.parse((await fetchTls(pki!, `${proxy!.origin}/.well-known/oauth-authorization-server`)).body) as Record<string, string>;
        const answer = await page.goto(authorizationUrl(doc.authorization_endpoint!, pkce()));
        assert.equal(answer?.status(), 500);
        assert.equal(await heading(page), 'Something went wrong');
        await seen.settled();
        assert.deepEqual(seen.cookies.map((c) => c.name), [], 'no cookie is set');
        assert.deepEqual(await context.cookies(proxy!.origin), []);
        const errors = plain!.logs.filter((l) => l.msg === 'server error');
        const refused = errors.find((l) => (l.err as { message?: string } | undefined)?.message === 'Cannot send secure cookie over unencrypted connection');
        assert.ok(refused, JSON.stringify(errors));
        assert.match(String(refused.hint), /TRUST_PROXY=true/, 'the operator is told what to set');

        // the account pages' sign-in (the account client's authorization request) fails the same way
        const signIn = await fetchTls(pki!, `${proxy!.origin}/account/sign-in`);
        assert.equal(signIn.status, 500);
        assert.equal(signIn.headers['set-cookie'], undefined);
      } finally {
        await context.close();
      }
    });
  });
});
