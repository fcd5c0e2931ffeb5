/**
 * One server per test file and store kind: `const s = serverFixture('redis')` inside a
 * describe() starts a redis-server (for 'redis') and the authorization server before the
 * tests and stops both after them.
 */
import { before, after } from 'node:test';
import { startServer, type StartOptions, type StoreKind, type TestServer } from './server.js';
import { startRedis } from './redis.js';

export const STORE_KINDS: StoreKind[] = ['sqlite', 'redis'];

type RedisServer = Awaited<ReturnType<typeof startRedis>>;

export function serverFixture(kind: StoreKind, options: Omit<StartOptions, 'store' | 'redisUrl'> = {}) {
  const state: { t?: TestServer; redis?: RedisServer } = {};
  before(async () => {
    if (kind === 'redis') state.redis = await startRedis();
    state.t = await startServer({ ...options, store: kind, ...(state.redis ? { redisUrl: state.redis.url } : {}) });
  });
  after(async () => {
    await state.t?.stop();
    await state.redis?.stop();
  });
  return {
    get t(): TestServer {
      if (!state.t) throw new Error('server not started');
      return state.t;
    },
    get redis(): RedisServer | undefined {
      return state.redis;
    },
  };
}
