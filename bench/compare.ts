/**
 * bench/compare: the issuance benchmark (bench/issuance-setup.ts) with several mcp-authz builds side
 * by side, each against the same bare engine in the same run: how a change is measured against the
 * commit before it (docs/performance.md, "Comparing builds").
 *
 *   git worktree add /tmp/before <commit> && ln -s "$PWD/node_modules" /tmp/before/node_modules
 *   (cd /tmp/before && npx tsc -p tsconfig.json)
 *   npm run bench:compare -- /tmp/before .              STORE=sqlite|redis ROUNDS=10 SECONDS=4 WARMUP=15
 *   npm run bench:compare -- . '.|LOG_LEVEL=warn'       a build with environment of its own
 *
 * A build is a directory holding a built mcp-authz (dist/src/main.js), optionally followed by
 * `|NAME=value;NAME=value`. Every server is pinned to core 0 and autocannon to core 1; after a
 * warm-up round each (WARMUP, 15 s), rounds alternate (the order flipped every round). Reported per build: median
 * tokens/s, the median of its per-round ratios to the bare engine, and its CPU per token (all
 * threads, and the main thread), median and lowest: on a noisy machine the lowest is the least
 * disturbed. Not part of `npm run bench`; writes nothing to bench/results.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { alternate, pairedRatio, startRedis, summary, type Server } from './harness.js';
import { issuanceLoad, startBareEngine, startMcpAuthz, writeIssuanceConfig, type StoreKind } from './issuance-setup.js';

const STORE = (process.env.STORE ?? 'sqlite') as StoreKind;
const ROUNDS = Number(process.env.ROUNDS ?? 10);
const SECONDS = Number(process.env.SECONDS ?? 4);
const WARMUP = Number(process.env.WARMUP ?? 15);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10);

interface Build {
  spec: string;
  main: string;
  env: NodeJS.ProcessEnv;
}

function usage(problem: string): never {
  console.error(`bench/compare: ${problem}\nusage: npm run bench:compare -- <build dir>[|NAME=value;...] ...   (STORE=sqlite|redis ROUNDS SECONDS WARMUP CONNECTIONS)`);
  process.exit(2);
}

function parseBuild(spec: string): Build {
  const [dir = '', envPart = ''] = spec.split('|', 2);
  const main = resolve(dir, 'dist/src/main.js');
  if (!existsSync(main)) usage(`${spec}: no built mcp-authz at ${main} (run npx tsc -p tsconfig.json there)`);
  const env: NodeJS.ProcessEnv = {};
  for (const pair of envPart.split(';').filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at < 1) usage(`${spec}: "${pair}" is not NAME=value`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return { spec, main, env };
}

if (STORE !== 'sqlite' && STORE !== 'redis') usage(`STORE must be sqlite or redis, not ${STORE}`);
for (const [name, value] of [['ROUNDS', ROUNDS], ['SECONDS', SECONDS], ['WARMUP', WARMUP], ['CONNECTIONS', CONNECTIONS]] as const) {
  if (!Number.isInteger(value) || value < 1) usage(`${name} must be a whole number of at least 1`);
}
const builds = process.argv.slice(2).map(parseBuild);
if (!builds.length) usage('name at least one build');

const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-compare-'));
const redis = STORE === 'redis' ? await startRedis(dir) : undefined;
const servers: Server[] = [];
try {
  const configFile = writeIssuanceConfig(dir);
  servers.push(await startBareEngine(STORE, dir, redis?.url));
  for (const [i, build] of builds.entries()) {
    servers.push(
      await startMcpAuthz({
        main: build.main,
        dataDir: join(dir, `build${i}`),
        redisUrl: redis?.url,
        configFile,
        logFile: join(dir, `build${i}.log`),
        env: build.env,
        label: build.spec,
      }),
    );
  }
  const load = (server: Server) => issuanceLoad(server.url, CONNECTIONS, SECONDS);
  console.error(`compare on ${STORE}: ${servers.length} servers, ${ROUNDS} alternating rounds of ${SECONDS} s, ${CONNECTIONS} connections`);
  const rounds = await alternate(servers.map((server) => ({ server, load: load(server) })), ROUNDS, WARMUP);
  for (const [i, server] of servers.entries()) {
    const own = rounds[i]!;
    const { requestsPerSecond, p99Ms, cpuMicrosPerRequest, mainThreadMicrosPerRequest, errors } = summary(own);
    const lowest = (field: 'cpuMicrosPerRequest' | 'mainThreadMicrosPerRequest') => Math.round(Math.min(...own.map((r) => r[field])));
    console.log(
      [
        i === 0 ? 'bare oidc-provider' : server.label,
        `  ${requestsPerSecond} tokens/s, p99 ${p99Ms} ms${i === 0 ? '' : `, ratio ${pairedRatio(rounds[0]!, own).toFixed(3)}`}${errors ? `, ${errors} errors` : ''}`,
        `  µs CPU a token ${cpuMicrosPerRequest} (lowest ${lowest('cpuMicrosPerRequest')}), main thread ${mainThreadMicrosPerRequest} (lowest ${lowest('mainThreadMicrosPerRequest')})`,
      ].join('\n'),
    );
  }
} finally {
  await Promise.all(servers.map((server) => server.stop()));
  redis?.stop();
  rmSync(dir, { recursive: true, force: true });
}
