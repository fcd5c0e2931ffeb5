/**
 * The authorization server on a real three-master Redis Cluster (started by the test),
 * configured by `redisClusterNodes`: two replicas go through a whole flow together, and
 * the store's keys are spread over every master.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { startRedisCluster, type RedisCluster } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { flowAcrossReplicas, followFeed } from './replicas.js';

describe('two replicas on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let a: TestServer;
  let b: TestServer;
  const prefix = 'cluster-flow:';

  before(async () => {
    cluster = await startRedisCluster();
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
});
