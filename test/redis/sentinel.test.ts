/**
 * The authorization server on a real Sentinel set-up (a master, a replica and three
 * Sentinels, started by the test), configured by `redisSentinels` + `redisSentinelName`:
 * two replicas go through a whole flow together; then the master is killed, the Sentinels
 * promote the replica, and the same two server processes keep serving (no restart): tokens
 * issued before are still known and refreshed, a new flow succeeds, and the revocation feed opened before
 * the failover delivers an event appended after it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSentinel, type RedisSentinelSet } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { flowAcrossReplicas, followFeed, healthy, isActive, refresh } from './replicas.js';

describe('two replicas through Redis Sentinel, across a failover', () => {
  let sentinel: RedisSentinelSet;
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    sentinel = await startSentinel({ sentinels: 3 });
    const config = { redisSentinels: sentinel.sentinels, redisSentinelName: sentinel.name };
    a = await startServer({ store: 'redis', redisKeyPrefix: 'sentinel-flow:', config });
    // replicas behind one name share the issuer (each listens on its own port here)
    b = await startServer({ store: 'redis', redisKeyPrefix: 'sentinel-flow:', config: { ...config, issuer: a.issuer } });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await sentinel?.stop();
  });

  it('runs the whole flow, then keeps serving after the master is killed and the replica promoted', async () => {
    const feed = await followFeed(b);
    try {
      const before = await flowAcrossReplicas(a, b, feed);
      await sentinel.replicated();
      const oldMaster = await sentinel.masterPort();
      const newMaster = await sentinel.killMaster();
      assert.notEqual(newMaster, oldMaster);

      // the same processes reconnect through the Sentinels to the new master
      await healthy([a, b], 10_000);
      // what was written before (and replicated) is there: the grant and account behind the access token, the refresh token
      assert.equal(await isActive(b, before.accessToken), true, 'a token issued before the failover is still known');
      const refreshed = await refresh(b, before.refreshToken);
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      // the feed opened before the failover: its reader backs off while Redis is away, so allow it a few seconds
      await flowAcrossReplicas(a, b, feed, 8000);
    } finally {
      await feed.close();
    }
  });
});
