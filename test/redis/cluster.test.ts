/**
 * The authorization server on a real three-master Redis Cluster (started by the test, with
 * append-only files), configured by `redisClusterNodes`: two replicas go through a whole
 * flow together, the store's keys are spread over every master, and when the whole Cluster
 * is killed requests fail fast (503) until it is back, when the same processes serve again
 * with what was written before.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { NOTES, SECRET } from '../helpers/fixtures.js';
import { userTokens } from '../helpers/flows.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { flowAcrossReplicas, followFeed, healthy, isActive, refresh } from './replicas.js';

/** A client credentials token request: its status, Retry-After and how long it took. */
async function tokenRequest(t: TestServer) {
  const started = Date.now();
  const res = await fetch(t.url('/token'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES }),
    signal: AbortSignal.timeout(10_000),
  });
  await res.body?.cancel();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), ms: Date.now() - started };
}

describe('two replicas on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let a: TestServer;
  let b: TestServer;
  const prefix = 'cluster-flow:';

  before(async () => {
    cluster = await startRedisCluster({ persist: true });
    const config = { redisClusterNodes: cluster.nodes };
    a = await startServer({ store: 'redis', redisKeyPrefix: prefix, config });
    // replicas behind one name share the issuer (each listens on its own port here)
    b = await startServer({ store: 'redis', redisKeyPrefix: prefix, config: { ...config, issuer: a.issuer } });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await cluster?.stop();
  });

  it('signs in on A, introspects and refreshes on B, delivers a revocation from A on B’s feed', async () => {
    const feed = await followFeed(b);
    try {
      await flowAcrossReplicas(a, b, feed);
    } finally {
      await feed.close();
    }
  });

  it('keeps its data on every master', async () => {
    const inspector = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    try {
      await inspector.ping();
      const perMaster = await Promise.all(inspector.nodes('master').map((n) => n.keys(`${prefix}*`)));
      assert.equal(perMaster.length, 3);
      for (const keys of perMaster) assert.ok(keys.length > 0, `every master holds some keys (got ${perMaster.map((k) => k.length).join(', ')})`);
    } finally {
      inspector.disconnect();
    }
  });

  it('fails fast while the whole Cluster is down, and the same processes serve again once it is back', async () => {
    const { tokens } = await userTokens(a, 'web-app');
    await cluster.kill();
    for (const t of [a, b, a]) {
      const answer = await tokenRequest(t);
      assert.equal(answer.status, 503);
      assert.ok(Number(answer.retryAfter) >= 1, 'with Retry-After');
      assert.ok(answer.ms < 3000, `answered in ${answer.ms} ms`);
    }
    await cluster.start();
    await healthy([a, b], 15_000);
    assert.equal((await tokenRequest(b)).status, 200);
    assert.equal(await isActive(b, tokens.access_token), true, 'what was written before is there');
    assert.equal((await refresh(b, tokens.refresh_token!)).status, 200);
  });
});
