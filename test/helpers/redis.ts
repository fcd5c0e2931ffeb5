/**
 * Runs a real, throwaway `redis-server` for a test file: a free port on 127.0.0.1 and a
 * fresh temp directory (removed on stop). Real Redis rather than a mock, because the
 * properties under test (Lua atomicity, TTLs, restart survival) are Redis's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RedisServer {
  url: string;
  port: number;
  /** stops the server and removes its directory */
  stop(): Promise<void>;
  /** kills the server (SIGKILL) and starts it again on the same port and directory */
  restart(): Promise<void>;
  /** kills the server (SIGKILL); `start` brings it back on the same port and directory */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export interface StartRedisOptions {
  /** append-only file with fsync on every write, so data survives `restart()` */
  persist?: boolean;
}

const NOT_INSTALLED = 'redis-server was not found: install redis-server (apt-get install redis-server)';

/** A port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

/** One PING over a raw socket: true when the server answers +PONG. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function spawnServer(port: number, dir: string, persist: boolean): Promise<ChildProcess> {
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', persist ? 'yes' : 'no',
    '--dir', dir,
    '--daemonize', 'no',
    '--loglevel', 'warning',
  ];
  if (persist) args.push('--appendfsync', 'always');
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    let settled = false;
    child.once('error', (err: NodeJS.ErrnoException) => {
      settled = true;
      reject(err.code === 'ENOENT' ? new Error(NOT_INSTALLED) : err);
    });
    child.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      reject(new Error(`redis-server exited early (${signal ?? code}): ${output.trim()}`));
    });
    void (async () => {
      const deadline = Date.now() + 10_000;
      while (!settled && Date.now() < deadline) {
        if (await answersPing(port)) {
          settled = true;
          resolve(child);
          return;
        }
        await sleep(25);
      }
      if (!settled) {
        settled = true;
        child.kill('SIGKILL');
        reject(new Error(`redis-server on port ${port} did not answer PING within 10 s: ${output.trim()}`));
      }
    })();
  });
}

export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const persist = options.persist ?? false;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-redis-'));
  let child: ChildProcess;
  try {
    child = await spawnServer(port, dir, persist);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  // Never leave a server behind when the test process ends without calling stop().
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      process.removeListener('exit', killOnExit);
      child.kill('SIGTERM');
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      child.kill('SIGKILL');
      await exited(child);
      child = await spawnServer(port, dir, persist);
    },
    async kill() {
      child.kill('SIGKILL');
      await exited(child);
    },
    async start() {
      if (child.exitCode === null && child.signalCode === null) return;
      child = await spawnServer(port, dir, persist);
    },
  };
}
