/**
 * An OIDC connection asks the upstream again at each refresh (`checkOnRefresh`, default): at
 * sign-in it asks for a refresh token (`offline_access`, `prompt=consent`), keeps it sealed,
 * and uses it at the upstream when our refresh token is used. The person removed upstream
 * (the upstream's refresh refused with `invalid_grant`): our refresh is refused and their
 * grants revoked, on the revocation feed and in the audit log. The upstream down: our refresh
 * answers 503 with Retry-After and nothing is revoked. The upstream refresh token is in no
 * store value, log line or audit record in clear text. `checkOnRefresh: false` asks nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Browser } from '../helpers/browser-driver.js';
import { fixtureConfig, NOTES, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { startServer, type StoreKind, type TestServer } from '../helpers/server.js';
import { SseClient, revocationFor } from '../helpers/sse.js';
import { accountIdFor } from '../../src/connections/provision.js';
import { startUpstream, UPSTREAM_SECRET, type Upstream } from './oidc-upstream.js';
import { atUpstream, auditRecords, connectionLink, consentAndRedeem } from './oidc-flow.js';

const TIMEOUT = 120_000;

/** Our server with connection `corp` (checked at refresh) and `plain` (`checkOnRefresh: false`), on one upstream. */
async function setUp(store: StoreKind, redisUrl?: string) {
  const upstream = await startUpstream();
  const base = fixtureConfig();
  const t = await startServer({
    store,
    ...(redisUrl ? { redisUrl } : {}),
    config: {
      clients: [
        ...base.clients!,
        { client_id: 'web-refresh', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], application_type: 'native', grant_types: ['authorization_code', 'refresh_token'] },
      ],
      connections: [
        { kind: 'oidc', id: 'corp', name: 'Corp SSO', issuer: upstream.issuer, clientId: 'mcp-authz', clientSecret: UPSTREAM_SECRET },
        { kind: 'oidc', id: 'plain', name: 'Plain SSO', issuer: upstream.issuer, clientId: 'mcp-authz', clientSecret: UPSTREAM_SECRET, checkOnRefresh: false },
        // without prompt=consent the test upstream (oidc-provider) drops offline_access: no refresh token to ask with
        { kind: 'oidc', id: 'quiet', name: 'Quiet SSO', issuer: upstream.issuer, clientId: 'mcp-authz', clientSecret: UPSTREAM_SECRET, promptConsent: false },
      ],
    },
  });
  await upstream.register(['corp', 'plain', 'quiet'].map((id) => t.url(`/connections/${id}/callback`)));
  return { upstream, t };
}

/** Signs `login` in through `connection` as web-refresh: our tokens, and the URL we sent the browser to upstream. */
async function signIn(t: TestServer, upstream: Upstream, connection: string, login: string) {
  const browser = new Browser();
  const request = await authorizationRequest(t, 'web-refresh', { scope: 'notes:read', resource: NOTES });
  const authorizeUrl = (await browser.go(connectionLink(await browser.go(request.url), connection), {}, `${upstream.issuer}/auth`)).url;
  const tokens = await consentAndRedeem(browser, await atUpstream(browser, await browser.go(authorizeUrl), login), request);
  assert.ok(tokens.refresh_token);
  return { tokens, authorizeUrl: new URL(authorizeUrl) };
}

/** A refresh at our token endpoint as web-refresh: the status and body as they come. */
async function refresh(t: TestServer, token: string) {
  const res = await fetch(t.url('/token'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: 'web-refresh', resource: NOTES }),
  });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), text, body: JSON.parse(text) as { error?: string; refresh_token?: string } };
}

async function feed(t: TestServer) {
  const sse = new SseClient(t.url('/revocations'));
  await sse.next((e) => e.event === 'ready');
  return sse;
}

/** (b): the person removed upstream — our refresh refused, their grants revoked on the feed, audited. */
async function removedUpstream(t: TestServer, upstream: Upstream, login: string, token: string) {
  const id = accountIdFor('corp', login);
  const grants = await t.server.store.grants.list({ accountId: id });
  assert.ok(grants.length >= 1);
  const sse = await feed(t);
  try {
    upstream.people.delete(login);
    const refused = await refresh(t, token);
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.body.error, 'invalid_grant');
    assert.equal(upstream.refreshes.at(-1)?.error, 'invalid_grant', 'the upstream was asked and refused');
    await sse.next(revocationFor('subject', id));
    for (const grant of grants) await sse.next(revocationFor('grant', grant.grantId));
  } finally {
    await sse.close();
  }
  assert.deepEqual(await t.server.store.grants.list({ accountId: id }), [], 'their grants are gone');
  await t.server.audit.flush();
  const deprovisioned = auditRecords(t).filter((r) => r.event === 'account.deprovisioned' && r.details?.accountId === id);
  assert.deepEqual(deprovisioned.at(-1)?.details, { accountId: id, connection: 'corp', reason: 'gone_upstream', grantsRevoked: grants.length });
}

describe('an OIDC connection checks the upstream at refresh (sqlite)', { timeout: TIMEOUT }, () => {
  let upstream: Upstream;
  let t: TestServer;
  let ada: { tokens: { refresh_token?: string }; authorizeUrl: URL };
  let adaToken: string;

  before(async () => {
    ({ upstream, t } = await setUp('sqlite'));
    upstream.people.set('ada', { preferred_username: 'ada', email: 'ada@corp.example', email_verified: true });
    upstream.people.set('bob', { preferred_username: 'bob' });
    ada = await signIn(t, upstream, 'corp', 'ada');
    adaToken = ada.tokens.refresh_token!;
  });
  after(async () => {
    await t?.stop();
    await upstream?.stop();
  });

  test('a refresh token is asked of the upstream, and a refresh works while the person is there (asked upstream)', async () => {
    assert.ok(ada.authorizeUrl.searchParams.get('scope')?.split(' ').includes('offline_access'), ada.authorizeUrl.href);
    assert.equal(ada.authorizeUrl.searchParams.get('prompt'), 'consent');
    const before = upstream.refreshes.length;
    const refreshed = await refresh(t, adaToken);
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.deepEqual(upstream.refreshes.slice(before), [{ status: 200 }], 'the upstream was asked once');
    adaToken = refreshed.body.refresh_token!;
  });

  test('the upstream refresh token is in neither the SQLite files, the logs nor the audit log in clear text', async () => {
    const tokens = upstream.refreshTokens;
    assert.ok(tokens.length >= 1, 'the upstream issued refresh tokens');
    const kept = await t.server.store.model('OidcUpstreamRefreshToken').find(`corp:${accountIdFor('corp', 'ada')}`);
    assert.match(String((kept as { sealed?: unknown } | undefined)?.sealed), /^v1\./, 'kept, sealed');
    await t.server.audit.flush();
    const files = readdirSync(t.dataDir).filter((f) => f.startsWith('mcp-authz.sqlite'));
    assert.ok(files.length >= 1);
    const stored = files.map((f) => readFileSync(join(t.dataDir, f)).toString('latin1')).join('\n');
    const logs = JSON.stringify(t.logs);
    const audit = readFileSync(join(t.dataDir, 'audit', 'audit.jsonl'), 'utf8');
    for (const token of tokens) {
      assert.ok(!stored.includes(token), 'not in the store');
      assert.ok(!logs.includes(token), 'not in a log line');
      assert.ok(!audit.includes(token), 'not in the audit log');
    }
  });

  test('the upstream down: the refresh answers 503 with Retry-After, nothing is revoked; back up, the refresh works', async () => {
    const id = accountIdFor('corp', 'ada');
    const grants = (await t.server.store.grants.list({ accountId: id })).length;
    await upstream.down();
    try {
      const refused = await refresh(t, adaToken);
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.body.error, 'temporarily_unavailable');
      assert.ok(refused.retryAfter, 'with Retry-After');
      assert.doesNotMatch(refused.text, /ECONNREFUSED|at \w+ \(/);
      assert.equal((await t.server.store.grants.list({ accountId: id })).length, grants, 'nothing revoked');
    } finally {
      await upstream.up();
    }
    const refreshed = await refresh(t, adaToken);
    assert.equal(refreshed.status, 200, refreshed.text);
    adaToken = refreshed.body.refresh_token!;
  });

  test('checkOnRefresh: false asks no refresh token of the upstream and never calls it at a refresh', async () => {
    const bob = await signIn(t, upstream, 'plain', 'bob');
    assert.ok(!bob.authorizeUrl.searchParams.get('scope')?.split(' ').includes('offline_access'));
    assert.equal(bob.authorizeUrl.searchParams.get('prompt'), null);
    const before = upstream.refreshes.length;
    upstream.people.delete('bob');
    const refreshed = await refresh(t, bob.tokens.refresh_token!);
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.equal(upstream.refreshes.length, before, 'the upstream was not asked');
  });

  test('promptConsent: false and no refresh token from the upstream: refreshes are allowed unasked, with one warning naming the setting', async () => {
    upstream.people.set('cy', { preferred_username: 'cy' });
    upstream.people.set('di', { preferred_username: 'di' });
    const cy = await signIn(t, upstream, 'quiet', 'cy');
    assert.ok(cy.authorizeUrl.searchParams.get('scope')?.split(' ').includes('offline_access'));
    assert.equal(cy.authorizeUrl.searchParams.get('prompt'), null);
    const di = await signIn(t, upstream, 'quiet', 'di');
    const before = upstream.refreshes.length;
    upstream.people.delete('cy');
    for (const token of [cy.tokens.refresh_token!, di.tokens.refresh_token!]) {
      const refreshed = await refresh(t, token);
      assert.equal(refreshed.status, 200, refreshed.text);
    }
    assert.equal(upstream.refreshes.length, before, 'nothing to ask the upstream with');
    const warnings = t.logs.filter((l) => l.event === 'oidc.refresh_unchecked' && l.connection === 'quiet');
    assert.equal(warnings.length, 1, 'warned once for the connection');
    assert.match(String(warnings[0]!.msg), /connections\[quiet\]\.checkOnRefresh/);
  });

  test('the person removed upstream: the refresh is refused, their grants revoked on the feed, account.deprovisioned audited', async () => {
    await removedUpstream(t, upstream, 'ada', adaToken);
  });
});

describe('an OIDC connection checks the upstream at refresh (redis)', { timeout: TIMEOUT }, () => {
  let redis: RedisServer;
  let upstream: Upstream;
  let t: TestServer;

  before(async () => {
    redis = await startRedis();
    ({ upstream, t } = await setUp('redis', redis.url));
    upstream.people.set('ada', { preferred_username: 'ada' });
  });
  after(async () => {
    await t?.stop();
    await upstream?.stop();
    await redis?.stop();
  });

  test('refreshes while the person is there, the token sealed in Redis; removed upstream, refused and revoked on the feed', async () => {
    const { tokens } = await signIn(t, upstream, 'corp', 'ada');
    const refreshed = await refresh(t, tokens.refresh_token!);
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.equal(upstream.refreshes.at(-1)?.status, 200);

    const r = new Redis(redis.url);
    try {
      const values: string[] = [];
      for (const key of await r.keys('*')) {
        const type = await r.type(key);
        if (type === 'string') values.push((await r.get(key)) ?? '');
        else if (type === 'hash') values.push(JSON.stringify(await r.hgetall(key)));
        else if (type === 'set') values.push(...(await r.smembers(key)));
        else if (type === 'zset') values.push(...(await r.zrange(key, 0, -1)));
        else if (type === 'list') values.push(...(await r.lrange(key, 0, -1)));
        else if (type === 'stream') values.push(JSON.stringify(await r.xrange(key, '-', '+')));
      }
      const all = values.join('\n');
      assert.ok(/sealed\\?":\\?"v1\./.test(all), 'kept, sealed');
      const issued = upstream.refreshTokens;
      assert.ok(issued.length >= 1);
      for (const token of issued) assert.ok(!all.includes(token), 'not in Redis in clear text');
    } finally {
      r.disconnect();
    }

    await removedUpstream(t, upstream, 'ada', refreshed.body.refresh_token!);
  });
});
