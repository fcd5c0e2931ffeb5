/**
 * What the HTTP benchmarks share: servers started as processes of their own pinned to core 0
 * (`taskset -c 0`, with their thread pools), the load generator (autocannon) pinned to core 1,
 * each server's CPU time read from /proc around every round, medians, and results written to
 * `bench/results/<name>.json` with the machine they came from.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AUTOCANNON = fileURLToPath(new URL('../../node_modules/autocannon/autocannon.js', import.meta.url));

/** `taskset -c <core>` in front of a command where taskset exists (else the command as is, and a warning once). */
let warned = false;
export function pinned(core: number, command: string[]): string[] {
  if (spawnSync('taskset', ['-c', String(core), 'true']).status === 0) return ['taskset', '-c', String(core), ...command];
  if (!warned) console.error('taskset is not available: servers and load generator are not pinned, so ratios are less reliable');
  warned = true;
  return command;
}

/** Resolves once something accepts connections on 127.0.0.1:`port` (rejects after `timeoutMs`). */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A redis-server of the benchmark's own, on core 1 with the load generator, keeping nothing on disk. */
export async function startRedis(dir: string): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const [program, ...args] = pinned(1, ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  const child = spawn(program!, args, { stdio: 'ignore' });
  await waitForPort(port);
  return { url: `redis://127.0.0.1:${port}`, stop: () => void child.kill('SIGTERM') };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Server {
  label: string;
  url: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `command` on core 0 and waits until `url` answers `probePath`. */
export async function startServer(
  label: string,
  command: string[],
  url: string,
  options: { env?: NodeJS.ProcessEnv; probePath?: string; /** a file descriptor for its standard output (its log) */ stdout?: number } = {},
): Promise<Server> {
  const [program, ...args] = pinned(0, command);
  const child = spawn(program!, args, { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    if (output.length < 100_000) output += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${label} exited (${child.exitCode}): ${output.slice(-2000)}`);
    const ok = await fetch(`${url}${options.probePath ?? '/.well-known/openid-configuration'}`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`${label} did not answer within 30 s: ${output.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // the server's own pid: taskset execs the command, so the child is the server
  return {
    label,
    url,
    pid: child.pid!,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/**
 * User + system CPU time of a process and its threads, in seconds; with `mainThread`, of its
 * main thread only (the JavaScript thread, /proc/<pid>/task/<pid>): the rest is V8's helper
 * threads (garbage collection, compilation) and libuv's thread pool.
 */
export function cpuSeconds(pid: number, mainThread = false): number {
  const fields = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat (here 12 and 13 after the command name)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  seconds: number;
}

export interface Round {
  requestsPerSecond: number;
  requests: number;
  /** milliseconds */
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** the server's CPU time per request, microseconds */
  cpuMicrosPerRequest: number;
  /** of which its main (JavaScript) thread's */
  mainThreadMicrosPerRequest: number;
}

/** One closed-loop round of autocannon (on core 1) against `server`. */
export async function round(server: Server, load: LoadOptions): Promise<Round> {
  const args = ['-c', String(load.connections), '-d', String(load.seconds), '-m', load.method ?? 'GET', '--json'];
  for (const [name, value] of Object.entries(load.headers ?? {})) args.push('-H', `${name}=${value}`);
  if (load.body !== undefined) args.push('-b', load.body);
  const before = cpuSeconds(server.pid);
  const beforeMain = cpuSeconds(server.pid, true);
  const [program, ...rest] = pinned(1, [process.execPath, AUTOCANNON, ...args, load.url]);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(program!, rest, { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.once('error', reject);
    child.once('exit', () => resolve(text));
  });
  const cpu = cpuSeconds(server.pid) - before;
  const mainCpu = cpuSeconds(server.pid, true) - beforeMain;
  const result = JSON.parse(out) as { requests: { average: number; total: number }; latency: { p50: number; p99: number }; errors: number; non2xx: number };
  return {
    requestsPerSecond: result.requests.average,
    requests: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
    cpuMicrosPerRequest: result.requests.total ? (cpu * 1e6) / result.requests.total : NaN,
    mainThreadMicrosPerRequest: result.requests.total ? (mainCpu * 1e6) / result.requests.total : NaN,
  };
}

export const median = (xs: number[]): number => {
  const sorted = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * Alternating rounds of each contender (after one warm-up round each), the order flipped every
 * round so that neither always follows the other. Returns each contender's rounds.
 */
export async function alternate(contenders: { server: Server; load: LoadOptions }[], rounds: number, warmupSeconds: number): Promise<Round[][]> {
  for (const { server, load } of contenders) await round(server, { ...load, seconds: warmupSeconds });
  const results: Round[][] = contenders.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const order = contenders.map((_, i) => i);
    if (r % 2) order.reverse();
    for (const i of order) {
      const result = await round(contenders[i]!.server, contenders[i]!.load);
      results[i]!.push(result);
      if (process.env.VERBOSE) console.error(`  ${contenders[i]!.server.label} round ${r + 1}: ${result.requestsPerSecond.toFixed(0)}/s, p99 ${result.p99} ms, ${result.cpuMicrosPerRequest.toFixed(0)} µs CPU/request (main thread ${result.mainThreadMicrosPerRequest.toFixed(0)})`);
    }
  }
  return results;
}

/** Per-round ratios of b to a (paired rounds), their median. */
export function pairedRatio(a: Round[], b: Round[], field: 'requestsPerSecond' | 'cpuMicrosPerRequest' = 'requestsPerSecond'): number {
  return median(a.map((x, i) => (field === 'requestsPerSecond' ? b[i]![field] / x[field] : x[field] / b[i]![field])));
}

export function summary(rounds: Round[]) {
  return {
    requestsPerSecond: Math.round(median(rounds.map((r) => r.requestsPerSecond))),
    p99Ms: median(rounds.map((r) => r.p99)),
    cpuMicrosPerRequest: Math.round(median(rounds.map((r) => r.cpuMicrosPerRequest))),
    mainThreadMicrosPerRequest: Math.round(median(rounds.map((r) => r.mainThreadMicrosPerRequest))),
    errors: rounds.reduce((n, r) => n + r.errors + r.non2xx, 0),
    rounds: rounds.map((r) => Math.round(r.requestsPerSecond)),
  };
}

export function machine() {
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
}

/** Writes `bench/results/<name>.json` and returns its path. */
export function writeResult(name: string, result: Record<string, unknown>): string {
  const dir = `${ROOT}bench/results`;
  mkdirSync(dir, { recursive: true });
  const path = `${dir}/${name}.json`;
  writeFileSync(path, `${JSON.stringify({ benchmark: name, date: new Date().toISOString(), machine: machine(), ...result }, null, 2)}\n`);
  return path;
}
