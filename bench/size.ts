/**
 * bench/size: issuance with a full store. The store is filled with N live grants (the engine's
 * Grant records and the grant directory) and N registered clients (their registrations and the
 * client directory), N = 0, 10 000, 100 000, 1 000 000 by default, and mcp-authz then issues
 * client-credentials tokens to a *registered* client, so that every token request looks the
 * client up in the store (a static client never touches it).
 *
 *   npm run bench -- size           (SIZES=0,10000,100000,1000000 STORES=sqlite,redis ROUNDS=3 SECONDS=5)
 *
 * For each store and size: one `mcp-authz serve` on core 0 (this driver and the load on core 1),
 * a warm-up round, then ROUNDS closed-loop rounds of bench/issuance's load; reported: the median
 * tokens/s and its ratio to the empty store's. Target: every size within 10 % of the empty store.
 * Verification does not read the store at all (a verifier checks signatures and its revocation
 * set, which holds revocations, not grants), so it is not measured here.
 */
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openStore } from '../adapters/index.js';
import { freePort, median, round, startRedis, startServer, writeResult, type LoadOptions } from './harness.js';
import { BENCH_RESOURCE, benchConfig } from './fixtures.js';

const SIZES = (process.env.SIZES ?? '0,10000,100000,1000000').split(',').map(Number);
const STORES = (process.env.STORES ?? 'sqlite,redis').split(',') as ('sqlite' | 'redis')[];
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 5);
const YEAR = 365 * 86400;

/** Adds grants and registered clients until the store holds `total` of each (writes in parallel batches). */
async function fill(store: Awaited<ReturnType<typeof openStore>>, from: number, total: number): Promise<void> {
  const grants = store.model('Grant');
  const clients = store.model('Client');
  const now = Date.now();
  const batch = 500;
  for (let start = from; start < total; start += batch) {
    const writes: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(total, start + batch); i++) {
      const grantId = `bench-grant-${i}-${randomBytes(6).toString('hex')}`;
      const clientId = `bench-dcr-${i}`;
      writes.push(
        grants.upsert(grantId, { accountId: `account-${i % 1000}`, clientId, kind: 'Grant', jti: grantId, iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + YEAR, openid: { scope: 'openid' }, resources: { [BENCH_RESOURCE]: 'notes:read' } }, YEAR),
        store.grants.put({ grantId, accountId: `account-${i % 1000}`, clientId, createdAt: now }, now + YEAR * 1000),
        clients.upsert(clientId, { client_id: clientId, client_secret: randomBytes(16).toString('hex'), client_name: `Client ${i}`, redirect_uris: ['http://127.0.0.1:9/cb'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'client_secret_basic' }, YEAR),
        store.clients.put({ clientId, kind: 'dcr', name: `Client ${i}`, createdAt: now }, now + YEAR * 1000),
      );
    }
    await Promise.all(writes);
  }
}

async function benchmark(kind: 'sqlite' | 'redis') {
  const dir = mkdtempSync(join(tmpdir(), `mcp-authz-bench-size-${kind}-`));
  const redis = kind === 'redis' ? await startRedis(dir) : undefined;
  const dataDir = join(dir, 'data');
  const configFile = join(dir, 'mcp-authz.json');
  // registered clients may use client credentials here, within notes:read
  writeFileSync(configFile, JSON.stringify({ ...benchConfig(), rateLimits: { tokenPerClient: { max: 1_000_000, window: 60 }, registrationPerSource: { max: 1_000_000, window: 60 } }, registration: { clientCredentials: { scopes: ['notes:read'] } } }));
  const storeOptions = redis ? { dataDir, redis: { mode: 'standalone' as const, url: redis.url }, redisKeyPrefix: 'mcp-authz:' } : { dataDir, redisKeyPrefix: 'mcp-authz:' };
  const results: { size: number; tokensPerSecond: number; p99Ms: number; cpuMicrosPerToken: number }[] = [];
  let filled = 0;
  let client: { id: string; secret: string } | undefined;
  // one address for every start: the same issuer, as for a server that is restarted
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  try {
    for (const size of SIZES) {
      const store = await openStore(storeOptions);
      const started = performance.now();
      await fill(store, filled, size);
      await store.close();
      if (size > filled) console.error(`  ${kind}: filled to ${size} grants and clients in ${((performance.now() - started) / 1000).toFixed(0)} s`);
      filled = Math.max(filled, size);

      const server = await startServer('mcp-authz', [process.execPath, 'dist/src/main.js', '--config', configFile, 'serve'], url, {
        env: { PORT: String(port), ADMIN_PORT: '0', HOST: '127.0.0.1', ISSUER: url, DATA_DIR: dataDir, ...(redis ? { REDIS_URL: redis.url } : {}) },
        stdout: openSync(join(dir, 'mcp-authz.log'), 'a'),
        probePath: '/healthz',
      });
      try {
        if (!client) {
          const res = await fetch(`${url}/register`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ client_name: 'bench machine', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'notes:read', redirect_uris: [], response_types: [] }),
          });
          const registered = (await res.json()) as { client_id?: string; client_secret?: string };
          if (!registered.client_id || !registered.client_secret) throw new Error(`registration failed: ${res.status} ${JSON.stringify(registered)}`);
          client = { id: registered.client_id, secret: registered.client_secret };
        }
        const load: LoadOptions = {
          url: `${url}/token`,
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', resource: BENCH_RESOURCE, scope: 'notes:read' }).toString(),
          connections: 10,
          seconds: SECONDS,
        };
        await round(server, { ...load, seconds: SECONDS });
        const rounds = [];
        for (let r = 0; r < ROUNDS; r++) rounds.push(await round(server, load));
        const errors = rounds.reduce((n, r) => n + r.errors + r.non2xx, 0);
        if (errors) throw new Error(`${errors} failed token requests at size ${size}`);
        results.push({
          size,
          tokensPerSecond: Math.round(median(rounds.map((r) => r.requestsPerSecond))),
          p99Ms: median(rounds.map((r) => r.p99)),
          cpuMicrosPerToken: Math.round(median(rounds.map((r) => r.cpuMicrosPerRequest))),
        });
        console.error(`  ${kind}, ${size}: ${results.at(-1)!.tokensPerSecond} tokens/s`);
      } finally {
        await server.stop();
      }
    }
    const empty = results[0]!.tokensPerSecond;
    const rows = results.map((r) => ({ ...r, ratioToEmpty: Number((r.tokensPerSecond / empty).toFixed(3)) }));
    const path = writeResult(`size-${kind}`, { store: kind, method: { rounds: ROUNDS, seconds: SECONDS, client: 'dynamically registered (looked up in the store on every request)' }, sizes: rows });
    console.log([`issuance to a registered client with N grants and N clients in the ${kind} store`, ...rows.map((r) => `  ${String(r.size).padStart(8)}  ${r.tokensPerSecond} tokens/s  p99 ${r.p99Ms} ms  ratio ${r.ratioToEmpty}`), `  ${path}`].join('\n'));
    if (rows.some((r) => r.ratioToEmpty < 0.9)) process.exitCode = 1;
  } finally {
    redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const kind of STORES) await benchmark(kind);
