/**
 * bench/soak: mcp-authz issuing client-credentials tokens for a long time.
 *
 *   npm run bench -- soak           (MINUTES=10; SQLite)
 *
 * Two phases against one `mcp-authz serve` (core 0; this driver, the load, on core 1):
 * 1. flat over time — the closed loop of bench/issuance for MINUTES minutes, tokens/s per
 *    minute: the last minute must be within 10 % of the first;
 * 2. soak — an open loop at half the capacity phase 1 measured (requests sent at a fixed
 *    rate whatever the answers, latency counted from when each was due, so a stall shows),
 *    for MINUTES minutes, sampling the server's resident memory every 10 s; per minute:
 *    p50/p99/max latency and errors. Growth of memory and the error count are reported.
 */
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, round, startServer, writeResult, type LoadOptions } from './harness.js';
import { BENCH_CLIENT, BENCH_RESOURCE, BENCH_SECRET, benchConfig } from './fixtures.js';

const MINUTES = Number(process.env.MINUTES ?? 10);
const STORE = 'sqlite';

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);

/** Resident memory of a process, MiB. */
function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? NaN) / 1024;
}

/** An open loop: `rate` requests a second for `seconds`, latencies from each request's due time. */
async function openLoop(url: URL, body: string, headers: Record<string, string>, rate: number, seconds: number, onMinute: (minute: number, latencies: number[], errors: number) => void, errorKinds: Map<string, number>): Promise<void> {
  const failed = (kind: string) => errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const start = performance.now();
  let latencies: number[] = [];
  let errors = 0;
  let minute = 0;
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  const send = (due: number) => {
    const done = new Promise<void>((resolve) => {
      const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - due);
          else {
            errors++;
            failed(`HTTP ${res.statusCode}`);
          }
          resolve();
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        errors++;
        failed(err.code ?? err.message);
        resolve();
      });
      req.end(body);
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };
  while (performance.now() - start < seconds * 1000) {
    const now = performance.now();
    // every request that is due now goes out now, late or not
    while (start + (sent * 1000) / rate <= now) send(start + (sent++ * 1000) / rate);
    if (Math.floor((now - start) / 60_000) > minute) {
      onMinute(++minute, latencies, errors);
      latencies = [];
      errors = 0;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inFlight);
  onMinute(minute + 1, latencies, errors);
  agent.destroy();
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-bench-soak-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const configFile = join(dir, 'mcp-authz.json');
  writeFileSync(configFile, JSON.stringify({ ...benchConfig(), rateLimits: { tokenPerClient: { max: 1_000_000, window: 60 } } }));
  const server = await startServer('mcp-authz', [process.execPath, 'dist/src/main.js', '--config', configFile, 'serve'], url, {
    env: { PORT: String(port), ADMIN_PORT: '0', HOST: '127.0.0.1', ISSUER: url, DATA_DIR: join(dir, 'data') },
    stdout: openSync(join(dir, 'mcp-authz.log'), 'a'),
  });
  const headers = { authorization: `Basic ${Buffer.from(`${BENCH_CLIENT}:${BENCH_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' };
  const body = new URLSearchParams({ grant_type: 'client_credentials', resource: BENCH_RESOURCE, scope: 'notes:read' }).toString();
  try {
    // 1: closed loop, a round a minute
    const load: LoadOptions = { url: `${url}/token`, method: 'POST', headers, body, connections: 10, seconds: 60 };
    const perMinute: number[] = [];
    for (let m = 0; m < MINUTES; m++) {
      const r = await round(server, load);
      perMinute.push(Math.round(r.requestsPerSecond));
      console.error(`  minute ${m + 1}: ${perMinute.at(-1)} tokens/s, ${Math.round(r.cpuMicrosPerRequest)} µs CPU/token, RSS ${rssMiB(server.pid).toFixed(0)} MiB`);
    }
    const capacity = Math.max(...perMinute);
    // 2: open loop at half that
    const rate = Math.round(capacity / 2);
    const memory: number[] = [rssMiB(server.pid)];
    const sampler = setInterval(() => memory.push(rssMiB(server.pid)), 10_000);
    const minutes: { minute: number; p50Ms: number; p99Ms: number; maxMs: number; served: number; errors: number }[] = [];
    const errorKinds = new Map<string, number>();
    await openLoop(new URL(`${url}/token`), body, headers, rate, MINUTES * 60, (minute, latencies, errors) => {
      latencies.sort((a, b) => a - b);
      minutes.push({ minute, p50Ms: Number(percentile(latencies, 50).toFixed(2)), p99Ms: Number(percentile(latencies, 99).toFixed(2)), maxMs: Number((latencies.at(-1) ?? NaN).toFixed(1)), served: latencies.length, errors });
      console.error(`  open loop minute ${minute}: p50 ${minutes.at(-1)!.p50Ms} ms, p99 ${minutes.at(-1)!.p99Ms} ms, ${errors} errors, RSS ${rssMiB(server.pid).toFixed(0)} MiB`);
    }, errorKinds);
    clearInterval(sampler);
    memory.push(rssMiB(server.pid));
    const result = {
      store: STORE,
      minutes: MINUTES,
      closedLoopTokensPerSecondPerMinute: perMinute,
      lastToFirstMinute: Number((perMinute.at(-1)! / perMinute[0]!).toFixed(3)),
      openLoop: { rate, perMinute: minutes, errors: minutes.reduce((n, m) => n + m.errors, 0), errorKinds: Object.fromEntries(errorKinds) },
      rssMiB: { start: Number(memory[0]!.toFixed(1)), end: Number(memory.at(-1)!.toFixed(1)), max: Number(Math.max(...memory).toFixed(1)) },
    };
    const path = writeResult(`soak-${STORE}`, result);
    console.log(
      [
        `soak, ${STORE}, ${MINUTES} minutes each phase`,
        `  closed loop tokens/s by minute: ${perMinute.join(' ')}  (last/first ${result.lastToFirstMinute}; target ≥ 0.9)`,
        `  open loop at ${rate}/s: p99 by minute ${minutes.map((m) => m.p99Ms).join(' ')} ms; errors ${result.openLoop.errors} ${JSON.stringify(result.openLoop.errorKinds)}`,
        `  resident memory ${result.rssMiB.start} → ${result.rssMiB.end} MiB (max ${result.rssMiB.max})`,
        `  ${path}`,
      ].join('\n'),
    );
    if (result.lastToFirstMinute < 0.9 || result.openLoop.errors > 0) process.exitCode = 1;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
