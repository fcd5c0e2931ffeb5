/**
 * The admin listener (src/admin/listener.ts) of a server on a real Redis, scraped during real
 * flows over HTTP: /healthz, /readyz (store reachable, keys loaded, not draining) and /metrics
 * (requests and latency per endpoint and status, tokens per grant type and client, refresh
 * reuse, consent decisions, sign-ins, errors, store latency, audit backlog, revocation feed
 * subscribers and events, rate-limit hits, event loop delay). The counters are read before and
 * after each step, so each assertion is about what that step did.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverFixture } from '../helpers/harness.js';
import { startAdminListener, type AdminListener } from '../../src/admin/listener.js';
import { userTokens } from '../helpers/flows.js';
import { basicClient, client } from '../helpers/rp.js';
import { NOTES, REDIRECT, SECRET } from '../helpers/fixtures.js';
import { SseClient } from '../helpers/sse.js';
import { hasMetric, metricValue, scrape, type Sample } from '../helpers/metrics.js';

describe('admin listener', { timeout: 90_000 }, () => {
  const s = serverFixture('redis', { config: { rateLimits: { registrationPerSource: { max: 1, window: 3600 } } } });
  let admin: AdminListener;
  const adminUrl = (path: string) => `${admin.url}${path}`;
  const metrics = async (): Promise<Sample[]> => (await scrape(adminUrl('/metrics'))).samples;
  /** how much `name{labels}` grew while `step` ran */
  async function growth(name: string, labels: Record<string, string>, step: () => Promise<unknown>): Promise<number> {
    const before = metricValue(await metrics(), name, labels);
    await step();
    return metricValue(await metrics(), name, labels) - before;
  }

  before(async () => {
    admin = await startAdminListener({ port: 0, host: '127.0.0.1', readiness: s.t.server.readiness, metrics: s.t.server.metrics, log: s.t.server.log });
  });
  after(() => admin?.close());

  it('answers /healthz, /readyz, and nothing else', async () => {
    const health = await fetch(adminUrl('/healthz'));
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    assert.equal(health.headers.get('cache-control'), 'no-store');
    const ready = await fetch(adminUrl('/readyz'));
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', store: 'ok', keys: 'ok', draining: false });
    assert.equal((await fetch(adminUrl('/token'))).status, 404);
    const post = await fetch(adminUrl('/metrics'), { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    const head = await fetch(adminUrl('/healthz'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  });

  it('refuses a port in use with a message naming the setting', async () => {
    const port = new URL(admin.url).port;
    await assert.rejects(
      startAdminListener({ port: Number(port), host: '127.0.0.1', readiness: s.t.server.readiness, metrics: s.t.server.metrics, log: s.t.server.log }),
      /the admin listener cannot use 127\.0\.0\.1:\d+: the port is in use \(set ADMIN_PORT/,
    );
  });

  it('is not the public listener: the public port serves no /metrics or /readyz', async () => {
    assert.equal((await fetch(s.t.url('/metrics'))).status, 404);
    assert.equal((await fetch(s.t.url('/readyz'))).status, 404);
  });

  it('serves Prometheus text with the process metrics, event loop delay included', async () => {
    const { contentType, samples } = await scrape(adminUrl('/metrics'));
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    for (const name of [
      'mcp_authz_nodejs_eventloop_lag_seconds',
      'mcp_authz_nodejs_eventloop_lag_p99_seconds',
      'mcp_authz_process_resident_memory_bytes',
      'mcp_authz_audit_pending_records',
      'mcp_authz_audit_sink_lag_seconds',
      'mcp_authz_revocation_feed_subscribers',
      'mcp_authz_ready',
    ]) {
      assert.ok(hasMetric(samples, name), `${name} is exported`);
    }
  });

  it('counts a sign-in, its consent and the authorization code token, and times the requests per endpoint', async () => {
    const before = await metrics();
    const { tokens } = await userTokens(s.t, 'web-app');
    const after = await metrics();
    const grew = (name: string, labels: Record<string, string> = {}) => metricValue(after, name, labels) - metricValue(before, name, labels);
    assert.equal(grew('mcp_authz_tokens_issued_total', { grant_type: 'authorization_code', client: 'web-app' }), 1);
    assert.equal(grew('mcp_authz_logins_total', { outcome: 'success' }), 1);
    assert.equal(grew('mcp_authz_consent_decisions_total', { decision: 'granted' }), 1);
    assert.equal(grew('mcp_authz_http_requests_total', { endpoint: 'token', method: 'POST', status: '200' }), 1);
    assert.ok(grew('mcp_authz_http_requests_total', { endpoint: 'authorization', method: 'GET' }) >= 1);
    assert.ok(grew('mcp_authz_http_requests_total', { endpoint: 'interaction' }) >= 2, 'sign-in and consent pages');
    assert.equal(grew('mcp_authz_http_request_duration_seconds_count', { endpoint: 'token', method: 'POST', status: '200' }), 1);
    // the store's operations were timed, by operation
    assert.ok(grew('mcp_authz_store_operation_duration_seconds_count', { operation: 'model.AuthorizationCode.find', outcome: 'success' }) >= 1);
    assert.ok(grew('mcp_authz_store_operation_duration_seconds_count', { operation: 'model.Grant.upsert' }) >= 1);
    assert.equal(grew('mcp_authz_errors_total'), 0, 'no error answers in a clean flow');

    // nothing secret is ever in the metrics
    const { text } = await scrape(adminUrl('/metrics'));
    for (const secret of [tokens.access_token, tokens.refresh_token!, SECRET]) assert.ok(!text.includes(secret));
  });

  it('counts client credentials tokens per client, and refused consent', async () => {
    const machine = await basicClient(s.t, 'nightly-report');
    assert.equal(await growth('mcp_authz_tokens_issued_total', { grant_type: 'client_credentials', client: 'nightly-report' }, () => client.clientCredentialsGrant(machine, { scope: 'notes:read', resource: NOTES })), 1);
  });

  it('counts refresh rotations, a replay within the grace window, and reuse after it that revokes the grant', async () => {
    const { tokens } = await userTokens(s.t, 'web-app');
    const refresh = (token: string) =>
      fetch(s.t.url('/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: 'web-app' }),
      });
    const before = await metrics();
    assert.equal((await refresh(tokens.refresh_token!)).status, 200);
    assert.equal((await refresh(tokens.refresh_token!)).status, 200, 'the same answer within the grace window');
    const after = await metrics();
    assert.equal(metricValue(after, 'mcp_authz_tokens_issued_total', { grant_type: 'refresh_token', client: 'web-app' }) - metricValue(before, 'mcp_authz_tokens_issued_total', { grant_type: 'refresh_token', client: 'web-app' }), 1);
    assert.equal(metricValue(after, 'mcp_authz_refresh_token_reuse_total', { outcome: 'replayed' }) - metricValue(before, 'mcp_authz_refresh_token_reuse_total', { outcome: 'replayed' }), 1);
  });

  it('counts error answers by endpoint and OAuth error code', async () => {
    const bad = () =>
      fetch(s.t.url('/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'not-a-code', client_id: 'web-app', redirect_uri: REDIRECT, code_verifier: 'x'.repeat(43) }),
      }).then((r) => assert.equal(r.status, 400));
    assert.equal(await growth('mcp_authz_errors_total', { endpoint: 'token', error: 'invalid_grant' }, bad), 1);
    assert.equal(await growth('mcp_authz_http_requests_total', { endpoint: 'token', status: '400' }, bad), 1);
  });

  it('counts rate-limit hits by limit', async () => {
    const register = () =>
      fetch(s.t.url('/register'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', client_name: 'metrics test' }),
      });
    const grew = await growth('mcp_authz_rate_limit_hits_total', { limit: 'registrationPerSource' }, async () => {
      assert.equal((await register()).status, 201);
      assert.equal((await register()).status, 429);
    });
    assert.equal(grew, 1);
  });

  it('shows feed subscribers, and counts revocations and the feed events they cause', async () => {
    const { tokens } = await userTokens(s.t, 'web-app');
    const feed = new SseClient(s.t.url('/revocations'));
    try {
      await feed.next((e) => e.event === 'ready');
      assert.ok(metricValue(await metrics(), 'mcp_authz_revocation_feed_subscribers') >= 1);
      const before = await metrics();
      const res = await fetch(s.t.url('/token/revocation'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: tokens.refresh_token!, client_id: 'web-app' }),
      });
      assert.equal(res.status, 200);
      await feed.next((e) => e.event === 'revocation');
      const after = await metrics();
      assert.ok(metricValue(after, 'mcp_authz_revocations_total') - metricValue(before, 'mcp_authz_revocations_total') >= 1);
      assert.ok(metricValue(after, 'mcp_authz_revocation_feed_events_total') - metricValue(before, 'mcp_authz_revocation_feed_events_total') >= 1);
    } finally {
      await feed.close();
    }
    // the closed stream is no longer counted
    for (let i = 0; i < 50 && metricValue(await metrics(), 'mcp_authz_revocation_feed_subscribers') > 0; i++) await sleep(20);
    assert.equal(metricValue(await metrics(), 'mcp_authz_revocation_feed_subscribers'), 0);
  });

  it('exposes well-formed histograms: cumulative buckets ending in +Inf, which equals the count', async () => {
    const samples = await metrics();
    for (const name of ['mcp_authz_http_request_duration_seconds', 'mcp_authz_store_operation_duration_seconds']) {
      const counts = samples.filter((x) => x.name === `${name}_count`);
      assert.ok(counts.length > 0, `${name} has series`);
      for (const count of counts) {
        const same = (x: Sample) => Object.entries(count.labels).every(([k, v]) => x.labels[k] === v);
        const buckets = samples.filter((x) => x.name === `${name}_bucket` && same(x));
        assert.equal(buckets.at(-1)!.labels.le, '+Inf');
        assert.equal(buckets.at(-1)!.value, count.value);
        for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'cumulative');
        const sum = samples.find((x) => x.name === `${name}_sum` && same(x));
        assert.ok(sum && sum.value > 0);
      }
    }
  });

  it('is not ready while the store is down, and ready again when it is back', async () => {
    await s.redis!.kill();
    try {
      const res = await fetch(adminUrl('/readyz'));
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { status: 'not ready', store: 'unreachable', keys: 'ok', draining: false });
      assert.equal((await fetch(adminUrl('/healthz'))).status, 200, 'alive all the same: no restart for a store outage');
      assert.equal(metricValue(await metrics(), 'mcp_authz_ready'), 0);
    } finally {
      await s.redis!.start();
    }
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await fetch(adminUrl('/readyz'))).status;
      if (status !== 200) await sleep(50);
    }
    assert.equal(status, 200);
    assert.equal(metricValue(await metrics(), 'mcp_authz_ready'), 1);
  });

  it('is not ready once draining, while /healthz and /metrics keep answering', async () => {
    s.t.server.readiness.drain();
    const res = await fetch(adminUrl('/readyz'));
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { draining: boolean }).draining, true);
    assert.equal((await fetch(adminUrl('/healthz'))).status, 200);
    assert.equal(metricValue(await metrics(), 'mcp_authz_ready'), 0);
  });
});
