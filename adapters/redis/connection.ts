/**
 * How mcp-authz reaches Redis: one server (a URL), a master found through Sentinel, or a
 * Cluster, each with ioredis's own support for it. The store (store.ts), the audit sink and
 * the audit reader all connect through {@link createRedisClient}, so the three modes behave
 * the same everywhere.
 *
 * Every client fails fast while Redis is unreachable: commands wait through one reconnect
 * attempt at most (a Cluster client, once connected, none) and time out after
 * `commandTimeout`; reconnects are retried every 50 ms at first, at most every 500 ms.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

export interface RedisNode {
  host: string;
  port: number;
}

interface Common {
  /** overrides a password in the URL; sent to the Redis servers (not to Sentinels) */
  password?: string | undefined;
  /** TLS to Redis (and to the Sentinels); a `rediss://` URL turns it on by itself */
  tls?: boolean | undefined;
}

export type RedisConnection =
  | (Common & { mode: 'standalone'; url: string })
  | (Common & { mode: 'sentinel'; sentinels: RedisNode[]; name: string })
  | (Common & { mode: 'cluster'; nodes: RedisNode[] });

export type RedisClient = Redis | Cluster;

export interface ClientTuning {
  /** how long a connection attempt may take */
  connectTimeoutMs: number;
  /** a command not answered by then fails; undefined: no limit (blocking reads) */
  commandTimeoutMs: number | undefined;
}

/** The longest wait between reconnect attempts. */
const MAX_RECONNECT_DELAY_MS = 500;

function retryDelay(times: number): number {
  return Math.min(times * 50, MAX_RECONNECT_DELAY_MS);
}

/** The URL with any `user:pass@` replaced by `***@`, safe for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace('//', '//***@');
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//***@');
  }
}

function nodeList(nodes: RedisNode[]): string {
  return nodes.map((n) => `${n.host}:${n.port}`).join(',');
}

/** Where the connection goes, for messages: never a password. */
export function describeRedis(connection: RedisConnection): string {
  switch (connection.mode) {
    case 'standalone':
      return redactRedisUrl(connection.url);
    case 'sentinel':
      return `Sentinel master "${connection.name}" via ${nodeList(connection.sentinels)}`;
    case 'cluster':
      return `Cluster ${nodeList(connection.nodes)}`;
  }
}

/** After a Sentinel failover the old master may answer writes with READONLY for a moment: reconnect, resend. */
function reconnectOnReadonly(err: Error): 2 | false {
  return err.message.startsWith('READONLY') ? 2 : false;
}

/**
 * A client for `connection`, not yet connected (`lazyConnect`: the first command, or
 * `connect()`, connects). Attach an 'error' listener: without one ioredis prints every
 * connection error.
 */
export function createRedisClient(connection: RedisConnection, tuning: ClientTuning): RedisClient {
  const tls = connection.tls ? { tls: {} } : {};
  const password = connection.password === undefined ? {} : { password: connection.password };
  const perConnection: RedisOptions = {
    lazyConnect: true,
    connectTimeout: tuning.connectTimeoutMs,
    maxRetriesPerRequest: 1,
    ...(tuning.commandTimeoutMs === undefined ? {} : { commandTimeout: tuning.commandTimeoutMs }),
    ...password,
    ...tls,
  };
  switch (connection.mode) {
    case 'standalone':
      return new Redis(connection.url, { ...perConnection, enableOfflineQueue: true, retryStrategy: retryDelay });
    case 'sentinel':
      return new Redis({
        ...perConnection,
        enableOfflineQueue: true,
        retryStrategy: retryDelay,
        sentinels: connection.sentinels,
        name: connection.name,
        role: 'master',
        sentinelRetryStrategy: retryDelay,
        reconnectOnError: reconnectOnReadonly,
        ...(connection.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
      });
    case 'cluster': {
      const options: ClusterOptions = {
        lazyConnect: true,
        enableOfflineQueue: true,
        clusterRetryStrategy: retryDelay,
        // a moved slot or a failover: follow it quickly, but not forever
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        maxRedirections: 16,
        slotsRefreshTimeout: tuning.connectTimeoutMs,
        redisOptions: perConnection,
      };
      const cluster = new Cluster(connection.nodes, options);
      // The Cluster's own queue holds commands while it has no connection, with no time limit.
      // It is needed for the first connection (a lazy client's first command waits for it);
      // after that, a command sent while the Cluster is unreachable fails at once, as on one
      // server after a reconnect attempt, instead of waiting for it to come back.
      const failFast = () => {
        cluster.options.enableOfflineQueue = false;
      };
      cluster.once('ready', failFast);
      cluster.once('reconnecting', failFast);
      return cluster;
    }
  }
}

/**
 * A second client like `client` for commands that block (XREAD BLOCK): same servers and
 * credentials, no command timeout. In Cluster mode it is a Cluster of its own, so the read
 * goes to whichever master holds the key.
 */
export function duplicateForBlocking(client: RedisClient): RedisClient {
  if (client instanceof Cluster) {
    const redisOptions: RedisOptions = { ...client.options.redisOptions };
    delete redisOptions.commandTimeout;
    // its first read waits for its first connection; a read that overruns is abandoned by the caller
    return client.duplicate([], { redisOptions, enableOfflineQueue: true });
  }
  return client.duplicate({ commandTimeout: undefined });
}

/**
 * HGETALL of many keys: one pipeline on a single server; in Cluster mode separate commands
 * (a pipeline there must stay within one node), sent together.
 */
export async function hgetallEach(client: RedisClient, keys: string[]): Promise<Record<string, string>[]> {
  if (keys.length === 0) return [];
  if (client instanceof Cluster) return Promise.all(keys.map((key) => client.hgetall(key)));
  const pipeline = client.pipeline();
  for (const key of keys) pipeline.hgetall(key);
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([err, fields]) => {
    if (err) throw err;
    return fields as Record<string, string>;
  });
}
