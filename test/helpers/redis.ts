/**
 * Runs a real, throwaway `redis-server` for a test file: a free port on 127.0.0.1 and a
 * fresh temp directory (removed on stop). Real Redis rather than a mock, because the
 * properties under test (Lua atomicity, TTLs, restart survival) are Redis's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/** A free port that is none of `taken` (two listens on port 0 may be given the same one). */
async function freePortBesides(taken: ReadonlySet<number>): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (!taken.has(port)) return port;
  }
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

function serverArgs(port: number, dir: string, persist: boolean): string[] {
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
  return args;
}

function spawnServer(port: number, dir: string, persist: boolean): Promise<ChildProcess> {
  return spawnRedis(port, serverArgs(port, dir, persist));
}

/** Runs `redis-server ARGS` and waits until `port` answers PING (10 s at most). */
function spawnRedis(port: number, args: string[]): Promise<ChildProcess> {
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

/** A process group of this helper's: every process, killed when the test process exits. */
class Processes {
  readonly #children = new Set<ChildProcess>();
  readonly #killAll = () => {
    for (const child of this.#children) child.kill('SIGKILL');
  };

  constructor() {
    process.once('exit', this.#killAll);
  }

  add(child: ChildProcess): ChildProcess {
    this.#children.add(child);
    return child;
  }

  async kill(child: ChildProcess): Promise<void> {
    child.kill('SIGKILL');
    await exited(child);
    this.#children.delete(child);
  }

  async stop(): Promise<void> {
    process.removeListener('exit', this.#killAll);
    const all = [...this.#children];
    for (const child of all) child.kill('SIGTERM');
    await Promise.all(all.map(exited));
    this.#children.clear();
  }
}

/** Polls `check` every 50 ms until it returns true; fails naming `what` after `ms`. */
async function waitFor(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
}

/** One command on a short-lived connection (ioredis, no retries). */
async function command(port: number, ...args: (string | number)[]): Promise<unknown> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    client.disconnect();
  }
}

export interface RedisCluster {
  /** the masters' ports, each serving a third of the slots */
  ports: number[];
  /** the seed nodes as `host:port`, as `redisClusterNodes` takes them */
  nodes: string[];
  /** kills every node (SIGKILL); `start` brings them back on the same ports and directories */
  kill(): Promise<void>;
  /** starts the killed nodes again and waits until the cluster is ok */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartRedisClusterOptions {
  /** append-only files with fsync on every write, so data survives `kill()` and `start()` */
  persist?: boolean;
}

/**
 * Three `redis-server --cluster-enabled yes` masters on free ports, no replicas: slots
 * assigned with CLUSTER ADDSLOTS (a third each), joined with CLUSTER MEET, ready once every
 * node says `cluster_state:ok` and knows the other two.
 */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  const processes = new Processes();
  const root = mkdtempSync(join(tmpdir(), 'mcp-authz-redis-cluster-'));
  const ports: number[] = [];
  const children = new Map<number, ChildProcess>();
  // each node's cluster bus on a free port of its own: by default it is the port + 10000, which
  // may be taken, or past 65535 (Redis then refuses any port above 55535)
  const busPorts = new Map<number, number>();
  const argsOf = (port: number) => {
    const dir = join(root, String(port));
    return [
      ...serverArgs(port, dir, options.persist ?? false),
      '--cluster-enabled', 'yes',
      '--cluster-port', String(busPorts.get(port)),
      '--cluster-config-file', join(dir, 'nodes.conf'),
      '--cluster-node-timeout', '2000',
    ];
  };
  const ready = async () => {
    for (const port of ports) {
      await waitFor(`cluster_state:ok on 127.0.0.1:${port}`, async () => {
        const info = String(await command(port, 'CLUSTER', 'INFO'));
        return info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${ports.length}`);
      });
    }
  };
  try {
    for (let i = 0; i < 3; i++) {
      const taken = new Set([...ports, ...busPorts.values()]);
      const port = await freePortBesides(taken);
      busPorts.set(port, await freePortBesides(new Set([...taken, port])));
      mkdirSync(join(root, String(port)));
      children.set(port, processes.add(await spawnRedis(port, argsOf(port))));
      ports.push(port);
    }
    const SLOTS = 16384;
    for (const [i, port] of ports.entries()) {
      const from = Math.floor((SLOTS * i) / ports.length);
      const to = Math.floor((SLOTS * (i + 1)) / ports.length);
      await command(port, 'CLUSTER', 'ADDSLOTS', ...Array.from({ length: to - from }, (_, k) => from + k));
      await command(port, 'CLUSTER', 'SET-CONFIG-EPOCH', i + 1);
    }
    for (const port of ports.slice(1)) await command(ports[0]!, 'CLUSTER', 'MEET', '127.0.0.1', port, busPorts.get(port)!);
    await ready();
  } catch (err) {
    await processes.stop();
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  return {
    ports,
    nodes: ports.map((port) => `127.0.0.1:${port}`),
    async kill() {
      for (const child of children.values()) await processes.kill(child);
    },
    async start() {
      for (const port of ports) {
        const child = children.get(port)!;
        if (child.exitCode === null && child.signalCode === null) continue;
        children.set(port, processes.add(await spawnRedis(port, argsOf(port))));
      }
      await ready();
    },
    async stop() {
      await processes.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface RedisSentinelSet {
  /** the master name the Sentinels monitor */
  name: string;
  /** the Sentinels as `host:port`, as `redisSentinels` takes them */
  sentinels: string[];
  /** the port of the server the Sentinels name master now */
  masterPort(): Promise<number>;
  /** waits until the replica has every write the master has had so far */
  replicated(): Promise<void>;
  /** SIGKILLs the current master and waits until the Sentinels have promoted the replica */
  killMaster(): Promise<number>;
  stop(): Promise<void>;
}

export interface StartSentinelOptions {
  /** how many `redis-server --sentinel` processes (1 to 3; default 1, quorum 1) */
  sentinels?: number;
}

/**
 * A master, one replica of it, and one to three Sentinels monitoring it (quorum: a
 * majority of them), on free ports. Failure detection is quick (down-after 1 s), so a killed
 * master is replaced within a few seconds.
 */
export async function startSentinel(options: StartSentinelOptions = {}): Promise<RedisSentinelSet> {
  const count = Math.min(3, Math.max(1, options.sentinels ?? 1));
  const name = 'mcp-authz-master';
  const processes = new Processes();
  const root = mkdtempSync(join(tmpdir(), 'mcp-authz-redis-sentinel-'));
  const servers = new Map<number, ChildProcess>();
  const sentinelPorts: number[] = [];
  try {
    const masterPort = await freePort();
    const replicaPort = await freePort();
    for (const port of [masterPort, replicaPort]) {
      const dir = join(root, String(port));
      mkdirSync(dir);
      const args = serverArgs(port, dir, false);
      if (port === replicaPort) args.push('--replicaof', '127.0.0.1', String(masterPort));
      servers.set(port, processes.add(await spawnRedis(port, args)));
    }
    await waitFor('the replica to sync', async () => String(await command(replicaPort, 'INFO', 'replication')).includes('master_link_status:up'));
    const quorum = Math.floor(count / 2) + 1;
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const dir = join(root, `sentinel-${port}`);
      mkdirSync(dir);
      const conf = join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${masterPort} ${quorum}`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 4000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      processes.add(await spawnRedis(port, [conf, '--sentinel', '--loglevel', 'warning']));
      sentinelPorts.push(port);
    }
    for (const port of sentinelPorts) {
      await waitFor(`Sentinel ${port} to see the replica`, async () => {
        const replicas = (await command(port, 'SENTINEL', 'REPLICAS', name)) as unknown[];
        return replicas.length === 1;
      });
    }
  } catch (err) {
    await processes.stop();
    rmSync(root, { recursive: true, force: true });
    throw err;
  }

  const masterPort = async () => {
    const [, port] = (await command(sentinelPorts[0]!, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string];
    return Number(port);
  };
  return {
    name,
    sentinels: sentinelPorts.map((port) => `127.0.0.1:${port}`),
    masterPort,
    async replicated() {
      // WAIT only counts the calling connection's own writes: compare offsets instead
      const master = await masterPort();
      const offset = (port: number, field: string) =>
        command(port, 'INFO', 'replication').then((info) => Number(new RegExp(`${field}:(\\d+)`).exec(String(info))?.[1] ?? -1));
      const target = await offset(master, 'master_repl_offset');
      for (const port of [...servers.keys()].filter((p) => p !== master)) {
        await waitFor(`the replica on ${port} to catch up`, async () => (await offset(port, 'slave_repl_offset')) >= target, 5000);
      }
    },
    async killMaster() {
      const old = await masterPort();
      const child = servers.get(old);
      if (!child) throw new Error(`no server of this set on port ${old}`);
      await processes.kill(child);
      servers.delete(old);
      let promoted = old;
      await waitFor('the Sentinels to promote the replica', async () => {
        promoted = await masterPort();
        if (promoted === old) return false;
        return String(await command(promoted, 'INFO', 'replication')).includes('role:master');
      }, 20_000);
      return promoted;
    },
    async stop() {
      await processes.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
