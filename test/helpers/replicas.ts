/**
 * Several `mcp-authz serve` processes (replicas) on one real redis-server, behind the test load
 * balancer (./balancer.ts) whose URL is their shared issuer: the set-up of a deployment with
 * N replicas on Redis. The configuration file is the fixture's plus Redis, `trustProxy` (the
 * balancer sets X-Forwarded-*) with two proxy hops (the test in front of the balancer may name the
 * client) and `config`; the accounts are created with the CLI, as an
 * operator would, before the replicas start together (a first start of several at once).
 *
 *   const set = await startReplicaSet({ config: { keys: { reloadInterval: 1, activationDelay: 2 } } });
 *   set.url('/token')          // through the balancer (round robin unless pinned or routed)
 *   set.balancer.pin(1)        // the next requests to the second replica
 *   await set.cli(['keys', 'rotate'])   // the CLI against the same store and configuration
 *   await set.stop()
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ConfigInput } from '../../src/config/schema.js';
import { startBalancer, type Balancer } from './balancer.js';
import { runCli, type CliResult } from './cli.js';
import { fixtureConfig, PASSWORD } from './fixtures.js';
import { freePort, startRedis, type RedisServer } from './redis.js';
import { serveProcess, type ServeProcess } from './serve-process.js';
import type { Site } from './server.js';

export interface ReplicaSet extends Site {
  redis: RedisServer;
  balancer: Balancer;
  replicas: ServeProcess[];
  configFile: string;
  /** runs the built CLI with the replicas' configuration (and so against their store) */
  cli(args: string[], stdin?: string): Promise<CliResult>;
  /** stops the replicas, the balancer and Redis, and removes the files */
  stop(): Promise<void>;
}

export interface ReplicaSetOptions {
  /** how many replicas (default 2) */
  count?: number;
  /** on top of the fixture configuration */
  config?: Partial<ConfigInput>;
  /** accounts created before the replicas start (password: PASSWORD) */
  users?: string[];
  /**
   * the balancer as a deployment's: skipping replicas whose /readyz (admin listener) fails, and
   * retrying a request on the next replica when its connection was refused (default false)
   */
  deployment?: boolean;
  /** environment of every replica on top of serveProcess's (e.g. LOG_LEVEL) */
  env?: NodeJS.ProcessEnv;
}

export async function startReplicaSet(options: ReplicaSetOptions = {}): Promise<ReplicaSet> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-replicas-'));
  const parts: { redis?: RedisServer; balancer?: Balancer; replicas: ServeProcess[] } = { replicas: [] };
  const stop = async () => {
    await Promise.all(parts.replicas.map((r) => r.stop()));
    await parts.balancer?.close();
    await parts.redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const redis = (parts.redis = await startRedis());
    const count = options.count ?? 2;
    const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
    const adminPorts = await Promise.all(Array.from({ length: count }, () => freePort()));
    const balancer = (parts.balancer = await startBalancer({
      backends: ports.map((port, i) => ({ url: `http://127.0.0.1:${port}`, ...(options.deployment ? { ready: `http://127.0.0.1:${adminPorts[i]}/readyz` } : {}) })),
      retry: options.deployment ?? false,
    }));
    const configFile = join(dir, 'mcp-authz.json');
    const config: ConfigInput = {
      ...fixtureConfig(),
      redisUrl: redis.url,
      redisKeyPrefix: `replicas-${randomUUID().slice(0, 8)}:`,
      trustProxy: true,
      // the tests play a proxy in front of the balancer (a CDN): what they put in X-Forwarded-For is
      // the client address the replicas see, the balancer's own entry is the second hop
      proxyHops: 2,
      ...options.config,
    };
    writeFileSync(configFile, JSON.stringify(config));
    const cliDir = join(dir, 'cli');
    mkdirSync(cliDir);
    const cli = (args: string[], stdin = '') => runCli(args, { dataDir: cliDir, configFile, stdin });
    for (const username of options.users ?? ['alice']) {
      const added = await cli(['user', 'add', username], `${PASSWORD}\n`);
      if (added.code !== 0) throw new Error(`user add ${username} failed: ${added.stderr}`);
    }
    for (const [i, port] of ports.entries()) {
      parts.replicas.push(await serveProcess({ dataDir: join(dir, `replica-${i}`), configFile, port, adminPort: adminPorts[i]!, issuer: balancer.url, ...(options.env ? { env: options.env } : {}) }));
    }
    await Promise.all(parts.replicas.map((r) => r.start()));
    return {
      issuer: balancer.url,
      url: (path) => `${balancer.url}${path}`,
      redis,
      balancer,
      replicas: parts.replicas,
      configFile,
      cli,
      stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}
