/**
 * The audit log on a real redis-server, and on a real three-master Redis Cluster: two writers (two replicas, two chains) interleave on
 * one stream and verify passes; an entry removed with XDEL is found (both the stream's own
 * record of the deletion and the hole in the chain); trimming the oldest entries, as the
 * stream's length cap does, is retention and not tampering.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import type { Store } from '../../adapters/contract.js';
import { openStore } from '../../adapters/index.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { redisConnection } from '../../src/config/redis.js';
import { createAuditLog } from '../../src/audit/log.js';
import { redisSource, verifySource } from '../../src/audit/read.js';
import { readCheckpoint } from '../../src/audit/checkpoints.js';
import { startRedis, startRedisCluster } from '../helpers/redis.js';
import { auditConfig, capturedLogger, sampleEvent } from './support.js';

for (const mode of ['standalone', 'cluster'] as const) {
  describe(`the Redis audit sink (${mode})`, () => {
    let settings: Partial<ConfigInput>;
    let client: Redis | Cluster;
    let stop: () => Promise<void>;
    /** where the stream is, as the configuration says */
    let where: NonNullable<ReturnType<typeof redisConnection>>;
    before(async () => {
      if (mode === 'standalone') {
        const redis = await startRedis();
        settings = { redisUrl: redis.url };
        client = new Redis(redis.url);
        stop = () => redis.stop();
      } else {
        const cluster = await startRedisCluster();
        settings = { redisClusterNodes: cluster.nodes };
        client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
        stop = () => cluster.stop();
      }
      where = redisConnection(auditConfig('/nonexistent-data-dir', { sink: 'redis' }, settings))!;
    });
    after(async () => {
      client?.disconnect();
      await stop?.();
    });

    async function twoWriters(prefix: string, each: number) {
      const config = auditConfig('/nonexistent-data-dir', { sink: 'redis', checkpointEvery: 7 }, { ...settings, redisKeyPrefix: prefix });
      const store = await openStore({ dataDir: config.dataDir, redis: redisConnection(config), redisKeyPrefix: prefix });
      const logger = capturedLogger();
      const a = createAuditLog({ config, store, log: logger.log });
      const b = createAuditLog({ config, store, log: logger.log });
      for (let i = 0; i < each; i++) {
        a.record(sampleEvent(i));
        b.record(sampleEvent(i + 2));
        if (i % 5 === 0) await Promise.all([a.flush(), b.flush()]);
      }
      await Promise.all([a.close(), b.close()]);
      assert.equal(logger.lines.filter((l) => Number(l.level) >= 40).length, 0, logger.text());
      return { config, store, a, b, key: `${prefix}audit` };
    }

    type Entry = [string, string[]];
    const recordOf = ([, fields]: Entry) => JSON.parse(fields[1]!) as { chain: string; seq: number; hash: string };

    describe('two replicas on one stream', () => {
      let store: Store;
      let key: string;
      let chains: string[];

      before(async () => {
        const written = await twoWriters('two:', 20);
        store = written.store;
        key = written.key;
        chains = [written.a.chain, written.b.chain];
      });
      after(() => store.close());

      it('interleaves the two chains in one stream; verify passes, chain by chain', async () => {
        const entries = (await client.xrange(key, '-', '+')) as Entry[];
        assert.equal(entries.length, 40);
        const order = entries.map((e) => recordOf(e).chain);
        // really interleaved: the chains alternate somewhere in the middle
        assert.ok(order.slice(0, 20).includes(chains[0]!) && order.slice(0, 20).includes(chains[1]!));
        for (const chain of chains) {
          assert.deepEqual(entries.map(recordOf).filter((r) => r.chain === chain).map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i + 1));
          assert.equal((await readCheckpoint(store.settings, chain))?.seq, 20);
        }
        const source = redisSource(where, key);
        try {
          const result = await verifySource(source, store.settings);
          assert.deepEqual(result.problems, []);
          assert.equal(result.records, 40);
          assert.equal(result.chains, 2);
          assert.deepEqual(result.notes, []);
          // tail: the newest records, oldest first
          const last = await source.last(3);
          assert.deepEqual(last, entries.slice(-3).map(([, fields]) => fields[1]));
        } finally {
          await source.close();
        }
      });

      it('an entry removed with XDEL: reported, with the hole in its chain', async () => {
        const entries = (await client.xrange(key, '-', '+')) as Entry[];
        const victim = entries[17]!;
        const { chain, seq } = recordOf(victim);
        assert.equal(await client.xdel(key, victim[0]), 1);
        const source = redisSource(where, key);
        try {
          const result = await verifySource(source, store.settings);
          const kinds = result.problems.map((p) => p.kind);
          assert.deepEqual(kinds, ['deleted', 'deleted']);
          assert.equal(result.problems[0]!.location, `${key}#${victim[0]}`);
          assert.match(result.problems[0]!.message, /XDEL/);
          assert.equal(result.problems[1]!.chain, chain);
          assert.equal(result.problems[1]!.seq, seq);
          assert.match(result.problems[1]!.location, new RegExp(`^${key}#`));
        } finally {
          await source.close();
        }
      });
    });

    describe('retention', () => {
      it('the oldest entries trimmed (as the length cap does) are retention: notes, not problems', async () => {
        const { store, key } = await twoWriters('trim:', 10);
        try {
          assert.equal(await client.xtrim(key, 'MAXLEN', 12), 8);
          const source = redisSource(where, key);
          try {
            const result = await verifySource(source, store.settings);
            assert.deepEqual(result.problems, []);
            assert.equal(result.records, 12);
            assert.ok(result.notes.some((n) => /8 of the oldest entries/.test(n)), result.notes.join('\n'));
            assert.ok(result.notes.some((n) => /starts at seq \d+ .*removed by retention/.test(n)), result.notes.join('\n'));
          } finally {
            await source.close();
          }
          // deleting the newest entries is not retention: the checkpoints catch it
          const newest = (await client.xrevrange(key, '+', '-', 'COUNT', 2)) as Entry[];
          assert.equal(await client.xdel(key, ...newest.map((e) => e[0])), 2);
          const again = redisSource(where, key);
          try {
            const result = await verifySource(again, store.settings);
            assert.ok(result.problems.some((p) => p.kind === 'truncated'), JSON.stringify(result.problems));
          } finally {
            await again.close();
          }
        } finally {
          await store.close();
        }
      });
    });
  });
}
