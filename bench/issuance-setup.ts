/**
 * The servers and the load of the issuance benchmark, shared by bench/issuance (mcp-authz against
 * the bare engine) and bench/compare (several mcp-authz builds against it): the same client,
 * resource, scope and request, so their numbers can be read side by side.
 */
import { openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startServer, type LoadOptions, type Server } from './harness.js';
import { BENCH_CLIENT, BENCH_RESOURCE, BENCH_SECRET, benchConfig } from './fixtures.js';

export type StoreKind = 'sqlite' | 'redis';

/**
 * Writes the mcp-authz config file of the benchmark into `dir`. Only the per-client token budget
 * is raised, or one client would be refused after 600 tokens a minute: the limit is still counted.
 */
export function writeIssuanceConfig(dir: string): string {
  const configFile = join(dir, 'mcp-authz.json');
  writeFileSync(configFile, JSON.stringify({ ...benchConfig(), rateLimits: { tokenPerClient: { max: 1_000_000, window: 60 } } }));
  return configFile;
}

/** The bare oidc-provider (bench/bare-oidc-provider.ts) on the same store kind, in a directory or Redis of its own. */
export async function startBareEngine(store: StoreKind, dir: string, redisUrl?: string, label = 'oidc-provider'): Promise<Server> {
  const port = await freePort();
  return startServer(label, [process.execPath, 'dist/bench/bare-oidc-provider.js', String(port), store, redisUrl ?? join(dir, 'bare')], `http://127.0.0.1:${port}`);
}

export interface McpAuthzOptions {
  /** the built `main.js` to run (default: this checkout's) */
  main?: string;
  /** its data directory (SQLite), when not on Redis */
  dataDir: string;
  redisUrl?: string;
  configFile: string;
  /** where its request logs go, as a deployment's would go somewhere */
  logFile: string;
  /** environment of its own (e.g. LOG_LEVEL) */
  env?: NodeJS.ProcessEnv;
  label?: string;
}

/** `mcp-authz serve` with every default on: audit trail, rate limits, request logs (to `logFile`). */
export async function startMcpAuthz(options: McpAuthzOptions): Promise<Server> {
  const port = await freePort();
  const storeEnv = options.redisUrl ? { REDIS_URL: options.redisUrl } : { DATA_DIR: options.dataDir };
  return startServer(options.label ?? 'mcp-authz', [process.execPath, options.main ?? 'dist/src/main.js', '--config', options.configFile, 'serve'], `http://127.0.0.1:${port}`, {
    env: { PORT: String(port), ADMIN_PORT: '0', HOST: '127.0.0.1', ISSUER: `http://127.0.0.1:${port}`, LOG_LEVEL: 'info', ...storeEnv, ...options.env },
    stdout: openSync(options.logFile, 'a'),
  });
}

/** Client credentials with HTTP Basic → an ES256 JWT for the benchmark's MCP server. */
export function issuanceLoad(url: string, connections: number, seconds: number): LoadOptions {
  return {
    url: `${url}/token`,
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${BENCH_CLIENT}:${BENCH_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: BENCH_RESOURCE, scope: 'notes:read' }).toString(),
    connections,
    seconds,
  };
}
