/**
 * bench/issuance: client credentials → an ES256 JWT access token for one MCP server, mcp-authz
 * next to a bare oidc-provider (bench/bare-oidc-provider.ts) with the same store kind, client,
 * resource and algorithm, in the same run.
 *
 *   npm run bench:issuance          (STORES=sqlite,redis ROUNDS=6 SECONDS=5 WARMUP=15 CONNECTIONS=10)
 *
 * Both servers are processes of their own pinned to core 0, the load generator (autocannon,
 * closed loop, keep-alive) to core 1; after a warm-up round each (15 s: both servers take 10–15 s of
 * load to reach their steady speed, docs/performance.md), rounds alternate between them.
 * mcp-authz runs as `mcp-authz serve` does, with every default on: the audit trail (the default
 * file sink, on either store), rate limits, request logs (to a file). Only the per-client
 * token budget is raised, or one client would be refused after 600 tokens a minute: the limit
 * is still counted on every request. The bare engine is oidc-provider as published;
 * BARE_ENGINE_FIX=1 gives it mcp-authz's one fix to the engine (src/provider/engine-fix.ts) too.
 * Reported: median tokens/s, p99, server CPU per token, and the median of the per-round ratios.
 * Results: bench/results/issuance-<store>.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alternate, pairedRatio, startRedis, summary, writeResult } from './harness.js';
import { issuanceLoad, startBareEngine, startMcpAuthz, writeIssuanceConfig, type StoreKind } from './issuance-setup.js';

const STORES = (process.env.STORES ?? 'sqlite,redis').split(',') as StoreKind[];
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const SECONDS = Number(process.env.SECONDS ?? 5);
const WARMUP = Number(process.env.WARMUP ?? 15);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10);
/** oidc-provider as published, or with the one fix mcp-authz applies to it (bench/bare-oidc-provider.ts) */
const BARE_ENGINE = process.env.BARE_ENGINE_FIX === '1' ? 'oidc-provider with the engine fix of mcp-authz' : 'oidc-provider as published';
for (const [name, value] of [['ROUNDS', ROUNDS], ['SECONDS', SECONDS], ['WARMUP', WARMUP], ['CONNECTIONS', CONNECTIONS]] as const) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`bench/issuance: ${name} must be a whole number of at least 1`);
    process.exit(2);
  }
}

async function benchmark(store: StoreKind) {
  const dir = mkdtempSync(join(tmpdir(), `mcp-authz-bench-${store}-`));
  const redis = store === 'redis' ? await startRedis(dir) : undefined;
  const bare = await startBareEngine(store, dir, redis?.url);
  const ours = await startMcpAuthz({ dataDir: join(dir, 'ours'), redisUrl: redis?.url, configFile: writeIssuanceConfig(dir), logFile: join(dir, 'mcp-authz.log') });
  const load = (url: string) => issuanceLoad(url, CONNECTIONS, SECONDS);
  try {
    console.error(`issuance on ${store}: a ${WARMUP} s warm-up each, then ${ROUNDS} alternating rounds of ${SECONDS} s, ${CONNECTIONS} connections`);
    const [bareRounds, ourRounds] = await alternate([{ server: bare, load: load(bare.url) }, { server: ours, load: load(ours.url) }], ROUNDS, WARMUP);
    const result = {
      store,
      method: { rounds: ROUNDS, seconds: SECONDS, warmupSeconds: WARMUP, connections: CONNECTIONS, pinning: 'servers on core 0, autocannon (and Redis) on core 1', bareEngine: BARE_ENGINE },
      bare: summary(bareRounds!),
      mcpAuthz: summary(ourRounds!),
      ratio: Number(pairedRatio(bareRounds!, ourRounds!).toFixed(3)),
      cpuRatio: Number(pairedRatio(bareRounds!, ourRounds!, 'cpuMicrosPerRequest').toFixed(3)),
    };
    const path = writeResult(`issuance-${store}`, result);
    if (result.ratio < 0.9 || result.mcpAuthz.errors > 0) process.exitCode = 1;
    console.log(
      [
        `issuance, ${store}: client credentials → ES256 JWT (the bare engine: ${BARE_ENGINE})`,
        `  bare oidc-provider  ${String(result.bare.requestsPerSecond).padStart(6)} tokens/s  p99 ${result.bare.p99Ms} ms  ${result.bare.cpuMicrosPerRequest} µs CPU/token (main thread ${result.bare.mainThreadMicrosPerRequest})`,
        `  mcp-authz           ${String(result.mcpAuthz.requestsPerSecond).padStart(6)} tokens/s  p99 ${result.mcpAuthz.p99Ms} ms  ${result.mcpAuthz.cpuMicrosPerRequest} µs CPU/token (main thread ${result.mcpAuthz.mainThreadMicrosPerRequest})`,
        `  ratio ${result.ratio} (tokens/s, median of paired rounds; target ≥ 0.9), CPU per token ratio ${result.cpuRatio}; errors ${result.bare.errors}/${result.mcpAuthz.errors}`,
        `  ${path}`,
      ].join('\n'),
    );
    return result;
  } finally {
    await Promise.all([bare.stop(), ours.stop()]);
    redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const store of STORES) await benchmark(store);
