/**
 * Redis killed for real (SIGKILL) under load, then started again on its data (append-only file,
 * fsync always): while it is down every request is answered at once with 503
 * `temporarily_unavailable` and Retry-After — no 500, no hang, no crash; within 2 s of its return
 * tokens are issued again; and no grant or refresh token acknowledged before the outage is lost.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { userTokens } from '../helpers/flows.js';
import { NOTES, SECRET } from '../helpers/fixtures.js';

interface Answer {
  status: number | 'error';
  ms: number;
  at: number;
  retryAfter: string | null;
  error: string | undefined;
}

describe('Redis killed under load', () => {
  let redis: RedisServer;
  let t: TestServer;
  before(async () => {
    redis = await startRedis({ persist: true });
    t = await startServer({ store: 'redis', redisUrl: redis.url });
  });
  after(async () => {
    await t?.stop();
    await redis?.stop();
  });

  async function tokenRequest(): Promise<Answer> {
    const started = performance.now();
    try {
      const res = await fetch(t.url('/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await res.json().catch(() => ({}))) as { error?: string };
      return { status: res.status, ms: performance.now() - started, at: started, retryAfter: res.headers.get('retry-after'), error: body.error };
    } catch {
      return { status: 'error', ms: performance.now() - started, at: started, retryAfter: null, error: undefined };
    }
  }

  const refresh = (refreshToken: string) =>
    fetch(t.url('/token'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'web-app', refresh_token: refreshToken }),
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as { refresh_token?: string; error?: string } }));

  it('fails fast with 503 while it is down, serves again within 2 s of its return, and loses nothing acknowledged', async () => {
    // acknowledged before the outage: grants with refresh tokens, one of them already rotated once
    const grants = await Promise.all([userTokens(t, 'web-app'), userTokens(t, 'web-app'), userTokens(t, 'web-app')]);
    const refreshTokens = grants.map((g) => g.tokens.refresh_token!);
    const rotated = await refresh(refreshTokens[0]!);
    assert.equal(rotated.status, 200);
    refreshTokens[0] = rotated.body.refresh_token!;

    const answers: Answer[] = [];
    let loading = true;
    const workers = Array.from({ length: 4 }, async () => {
      while (loading) answers.push(await tokenRequest());
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const killedAt = performance.now();
    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const startingAt = performance.now();
    await redis.start();
    const backAt = performance.now();
    // until it serves again (bounded), then a little more
    while (!answers.some((a) => a.at > backAt && a.status === 200) && performance.now() - backAt < 5000) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 300));
    loading = false;
    await Promise.all(workers);

    // answered before the kill (a request still in flight when Redis died may fairly get a 503)
    const before = answers.filter((a) => a.at + a.ms < killedAt);
    assert.ok(before.length > 0 && before.every((a) => a.status === 200), 'all served before the outage');
    // asked and answered while Redis was down (not while it was starting again)
    const during = answers.filter((a) => a.at > killedAt + 100 && a.at + a.ms < startingAt);
    assert.ok(during.length >= 4, `requests were made during the outage (${during.length})`);
    for (const a of during) {
      assert.equal(a.status, 503, `during the outage: ${a.status} after ${a.ms.toFixed(0)} ms`);
      assert.equal(a.error, 'temporarily_unavailable');
      assert.equal(a.retryAfter, '2');
      assert.ok(a.ms < 2500, `answered in ${a.ms.toFixed(0)} ms: no request waits for Redis`);
    }
    assert.ok(!answers.some((a) => a.status === 'error' || a.status === 500), 'no 500, no connection dropped');
    const firstServed = answers.filter((a) => a.at > backAt && a.status === 200).sort((a, b) => a.at - b.at)[0];
    assert.ok(firstServed, 'tokens are issued again');
    const recovery = firstServed.at + firstServed.ms - backAt;
    assert.ok(recovery < 2000, `full service ${recovery.toFixed(0)} ms after Redis returned`);

    // every grant and refresh token acknowledged before the outage still works
    for (const token of refreshTokens) {
      const answer = await refresh(token);
      assert.equal(answer.status, 200, `a refresh token acknowledged before the outage: ${JSON.stringify(answer.body)}`);
    }
    // one log line for the outage, not one per request
    const outageLines = t.logs.filter((l) => l.msg === 'the store cannot be reached; answering 503 until it can');
    assert.ok(outageLines.length >= 1 && outageLines.length <= 2, `${outageLines.length} outage log lines`);
    assert.ok(!JSON.stringify(t.logs).includes(SECRET), 'no secret in the logs');
  });
});
