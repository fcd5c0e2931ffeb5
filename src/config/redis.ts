/**
 * The configuration's Redis settings as one connection description for the store, the
 * audit sink and the audit reader (adapters/redis/connection.ts). The schema has already
 * checked that at most one mode is set and that the nodes are `host:port`.
 */
import type { OpenStoreOptions, RedisConnection, RedisNode } from '../../adapters/index.js';
import { HOST_PORT, type Config } from './schema.js';

type RedisSettings = Pick<Config, 'redisUrl' | 'redisSentinels' | 'redisSentinelName' | 'redisClusterNodes' | 'redisPassword' | 'redisTls'>;

function node(hostPort: string): RedisNode {
  const match = HOST_PORT.exec(hostPort);
  if (!match) throw new TypeError(`not a host:port: ${hostPort}`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) };
}

/** How to reach Redis, or undefined when the store is SQLite. */
export function redisConnection(config: RedisSettings): RedisConnection | undefined {
  const common = {
    ...(config.redisPassword === undefined ? {} : { password: config.redisPassword }),
    ...(config.redisTls ? { tls: true } : {}),
  };
  if (config.redisUrl !== undefined) return { mode: 'standalone', url: config.redisUrl, ...common };
  if (config.redisSentinels !== undefined && config.redisSentinelName !== undefined) {
    return { mode: 'sentinel', sentinels: config.redisSentinels.map(node), name: config.redisSentinelName, ...common };
  }
  if (config.redisClusterNodes !== undefined) return { mode: 'cluster', nodes: config.redisClusterNodes.map(node), ...common };
  return undefined;
}

/** What `openStore` needs from the configuration: SQLite in `dataDir`, or Redis. */
export function storeOptions(config: RedisSettings & Pick<Config, 'dataDir' | 'redisKeyPrefix'>): OpenStoreOptions {
  return { dataDir: config.dataDir, redis: redisConnection(config), redisKeyPrefix: config.redisKeyPrefix };
}
