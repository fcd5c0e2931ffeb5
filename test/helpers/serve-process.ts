/**
 * `mcp-authz serve` in a process of its own on a fixed port, as an operator runs it: for tests
 * that kill it for real and start it again on the same data (its issuer stays the same).
 * Replicas behind a load balancer (test/helpers/balancer.ts) get the balancer's URL as
 * `issuer` and their own `port`; readiness is then asked of the process itself (`origin`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis.js';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export interface ServeProcess {
  issuer: string;
  /** where this process itself listens (the issuer's origin unless another issuer was given) */
  origin: string;
  port: number;
  /** its data directory (SQLite, audit files) */
  dataDir: string;
  /** a URL under the issuer */
  url(path: string): string;
  /** the admin listener's URL for `path` (`/healthz`, `/readyz`, `/metrics`) */
  adminUrl(path: string): string;
  /** the running process's id (undefined when stopped) */
  readonly pid: number | undefined;
  /** everything the process (all its runs) wrote to standard output and standard error */
  output(): { stdout: string; stderr: string };
  /** starts it (again); resolves once /healthz answers */
  start(): Promise<void>;
  /** sends `signal` (SIGTERM by default, SIGKILL to kill it) and waits for it to exit; how it exited */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ServeProcessOptions {
  dataDir: string;
  configFile: string;
  env?: NodeJS.ProcessEnv;
  /** the port to listen on (default: a free one) */
  port?: number;
  /** the issuer, e.g. a load balancer's URL (default: this process's own origin) */
  issuer?: string;
  /** the admin listener's port (default: a free one) */
  adminPort?: number;
}

export async function serveProcess(options: ServeProcessOptions): Promise<ServeProcess> {
  const port = options.port ?? (await freePort());
  const origin = `http://127.0.0.1:${port}`;
  const issuer = options.issuer ?? origin;
  // the admin listener's default port is one per host: every process gets a free one of its own
  const adminPort = options.adminPort ?? (await freePort());
  let child: ChildProcess | undefined;
  let stdoutText = '';
  let stderrText = '';
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  return {
    issuer,
    origin,
    port,
    dataDir: options.dataDir,
    url: (path) => `${issuer}${path}`,
    adminUrl: (path) => `http://127.0.0.1:${adminPort}${path}`,
    get pid() {
      return running() ? child!.pid : undefined;
    },
    output: () => ({ stdout: stdoutText, stderr: stderrText }),
    async start() {
      if (running()) return;
      const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: '127.0.0.1', ADMIN_PORT: String(adminPort), ADMIN_HOST: '127.0.0.1', ISSUER: issuer, DATA_DIR: options.dataDir, LOG_LEVEL: 'warn', ...options.env };
      delete env.MCP_AUTHZ_CONFIG;
      // the store is the config file's (or the test's env): nothing inherited from the shell
      for (const name of Object.keys(env)) if (name.startsWith('REDIS_') && options.env?.[name] === undefined) delete env[name];
      const started = spawn(process.execPath, [MAIN, '--config', options.configFile, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      let stderr = '';
      started.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        stderrText += d.toString();
      });
      started.stdout!.on('data', (d: Buffer) => (stdoutText += d.toString()));
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (started.exitCode !== null) throw new Error(`serve exited ${started.exitCode}: ${stderr}`);
        const up = await fetch(`${origin}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        if (up) return;
        if (Date.now() > deadline) throw new Error(`serve did not answer within 20 s: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop(signal = 'SIGTERM') {
      if (!running()) return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null };
      const exited = once(child!, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      child!.kill(signal);
      const [code, by] = await exited;
      return { code, signal: by };
    },
  };
}
