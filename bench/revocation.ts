/**
 * bench/revocation: how soon after an RFC 7009 revocation returns a verifier in another process
 * refuses the token, over many revocations, on SQLite and on Redis.
 *
 *   npm run bench:revocation        STORES=sqlite,redis REVOCATIONS=1000
 *
 * mcp-authz (`mcp-authz serve`) and a verifier process (bench/verifier-process.ts, default
 * options) run on core 0, this driver on core 1. The driver gets REVOCATIONS tokens, then for
 * each: revokes it, takes the time the revocation answered, and asks the verifier about the token
 * until it is refused (each ask a keep-alive HTTP request of a fraction of a millisecond, which
 * bounds the resolution). Reported: p50, p99 and the longest. Target: p99 ≤ 50 ms on loopback.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, pinned, startRedis, startServer, writeResult } from './harness.js';
import { BENCH_CLIENT, BENCH_RESOURCE, BENCH_SECRET, benchConfig } from './fixtures.js';

const STORES = (process.env.STORES ?? 'sqlite,redis').split(',') as ('sqlite' | 'redis')[];
const REVOCATIONS = Number(process.env.REVOCATIONS ?? 1000);
const TARGET_P99_MS = 50;

const basic = `Basic ${Buffer.from(`${BENCH_CLIENT}:${BENCH_SECRET}`).toString('base64')}`;
const form = { 'content-type': 'application/x-www-form-urlencoded', authorization: basic };
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function benchmark(store: 'sqlite' | 'redis') {
  const dir = mkdtempSync(join(tmpdir(), `mcp-authz-bench-revocation-${store}-`));
  const stops: (() => unknown)[] = [];
  try {
    let storeEnv: Record<string, string> = { DATA_DIR: join(dir, 'data') };
    if (store === 'redis') {
      const redis = await startRedis(dir);
      stops.push(() => redis.stop());
      storeEnv = { REDIS_URL: redis.url };
    }
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const configFile = join(dir, 'mcp-authz.json');
    writeFileSync(configFile, JSON.stringify({ ...benchConfig(), rateLimits: { tokenPerClient: { max: 1_000_000, window: 60 } } }));
    const as = await startServer('mcp-authz', [process.execPath, 'dist/src/main.js', '--config', configFile, 'serve'], issuer, {
      env: { PORT: String(port), ADMIN_PORT: '0', HOST: '127.0.0.1', ISSUER: issuer, ...storeEnv },
      stdout: openSync(join(dir, 'mcp-authz.log'), 'a'),
    });
    stops.push(() => as.stop());
    const [program, ...args] = pinned(0, [process.execPath, 'dist/bench/verifier-process.js', issuer, BENCH_RESOURCE]);
    const verifier = spawn(program!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    stops.push(() => verifier.kill('SIGTERM'));
    const checkUrl = await new Promise<string>((resolve, reject) => {
      verifier.stdout!.on('data', (d: Buffer) => {
        const match = /listening (\S+)/.exec(d.toString());
        if (match) resolve(`${match[1]}/check`);
      });
      verifier.once('exit', (code) => reject(new Error(`the verifier process exited (${code})`)));
    });

    const tokens: string[] = [];
    for (let i = 0; i < REVOCATIONS; i++) {
      const res = await fetch(`${issuer}/token`, { method: 'POST', headers: form, body: new URLSearchParams({ grant_type: 'client_credentials', resource: BENCH_RESOURCE, scope: 'notes:read' }) });
      tokens.push(((await res.json()) as { access_token: string }).access_token);
    }
    const check = (token: string) => fetch(checkUrl, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    const latencies: number[] = [];
    let failures = 0;
    for (const token of tokens) {
      if ((await check(token)) !== 200) throw new Error('a fresh token was refused');
      const res = await fetch(`${issuer}/token/revocation`, { method: 'POST', headers: form, body: new URLSearchParams({ token }) });
      await res.arrayBuffer();
      const returned = performance.now();
      let status = await check(token);
      while (status === 200 && performance.now() - returned < 2000) status = await check(token);
      if (status === 200) failures++;
      else latencies.push(performance.now() - returned);
    }
    latencies.sort((a, b) => a - b);
    const result = {
      store,
      method: { revocations: REVOCATIONS, pinning: 'mcp-authz and the verifier process on core 0, the driver on core 1' },
      p50Ms: Number(percentile(latencies, 50).toFixed(2)),
      p99Ms: Number(percentile(latencies, 99).toFixed(2)),
      maxMs: Number(latencies.at(-1)!.toFixed(2)),
      notRefusedWithin2s: failures,
      targetP99Ms: TARGET_P99_MS,
    };
    const path = writeResult(`revocation-${store}`, result);
    console.log(`revocation → refused by a verifier in another process, ${store}: p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms over ${latencies.length} (target p99 ≤ ${TARGET_P99_MS} ms)${failures ? `; ${failures} not refused within 2 s` : ''}\n  ${path}`);
    if (failures || result.p99Ms > TARGET_P99_MS) process.exitCode = 1;
  } finally {
    for (const stop of stops.reverse()) await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const store of STORES) await benchmark(store);
