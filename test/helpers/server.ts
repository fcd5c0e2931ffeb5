/**
 * Starts a real authorization server on 127.0.0.1 (a free port) for one test file,
 * on a fresh SQLite directory or on a given Redis, with the fixture configuration.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createServer, type AuthServer } from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { createAccountService } from '../../src/accounts/service.js';
import { fixtureConfig, PASSWORD } from './fixtures.js';
import { AccountExistsError } from '../../adapters/contract.js';

export type StoreKind = 'sqlite' | 'redis';

export interface TestServer {
  issuer: string;
  url(path: string): string;
  server: AuthServer;
  /** every application log line written so far (JSON objects) */
  logs: Record<string, unknown>[];
  http: Server;
  dataDir: string;
  stop(): Promise<void>;
}

/** What flows need of a server: its issuer and URLs under it (a TestServer, a replica set behind a balancer). */
export type Site = Pick<TestServer, 'issuer' | 'url'>;

export interface StartOptions {
  store: StoreKind;
  redisUrl?: string;
  /** replaces the fixture configuration's keys */
  config?: Partial<ConfigInput>;
  /** reuse a data directory (restart tests) */
  dataDir?: string;
  /** listen on this port (a restart at the same issuer); default a free one */
  port?: number;
  redisKeyPrefix?: string;
  /** a path for the issuer, e.g. '/tenant' (default: the origin) */
  issuerPath?: string;
  /** the issuer's host name (default 127.0.0.1; WebAuthn needs a domain such as `localhost`) */
  issuerHost?: string;
  /** accounts created before the test: username → roles (password: PASSWORD) */
  users?: Record<string, string[]>;
}

export async function startServer(options: StartOptions): Promise<TestServer> {
  const http = createHttpServer();
  await new Promise<void>((resolve) => http.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  const issuer = `http://${options.issuerHost ?? '127.0.0.1'}:${port}${options.issuerPath ?? ''}`;
  const ownsDir = !options.dataDir;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'mcp-authz-test-'));

  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = parseConfig({
    ...fixtureConfig(),
    issuer,
    port,
    dataDir,
    logLevel: 'debug',
    ...(options.store === 'redis' ? { redisUrl: options.redisUrl, redisKeyPrefix: options.redisKeyPrefix ?? `t${randomUUID().slice(0, 8)}:` } : {}),
    ...options.config,
  });
  const server = await createServer(config, { logger: createLogger('debug', sink) });
  http.on('request', server.app.callback());

  const accounts = createAccountService(server.store.accounts);
  for (const [username, roles] of Object.entries(options.users ?? { alice: [] })) {
    if (await server.store.accounts.findByUsername(username)) continue;
    // replicas sharing a store may race to create the same test account
    await accounts.create(username, PASSWORD, roles).catch((err: Error) => {
      if (!(err instanceof AccountExistsError)) throw err;
    });
  }

  return {
    issuer,
    url: (path) => `${issuer}${path}`,
    server,
    logs,
    http,
    dataDir,
    async stop() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await server.close();
      if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
