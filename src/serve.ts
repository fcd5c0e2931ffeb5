/**
 * `mcp-authz serve`: build the server, start the admin listener and the public one, say what
 * to do next, and shut down gracefully on SIGTERM/SIGINT:
 *   1. readiness goes false (`/readyz` 503; the admin listener keeps answering to the end), and
 *      for `shutdown.drainDelay` seconds requests are still served, so load balancers polling
 *      readiness stop sending new connections before the listener closes;
 *   2. the public listener stops accepting: new connections are refused;
 *   3. revocation feed streams end with `event: reconnect`, so verifiers move to another replica;
 *   4. requests in flight finish, for at most `shutdown.gracePeriod` seconds, after which their
 *      connections are closed; idle keep-alive connections are closed as soon as they are idle;
 *   5. the audit log is flushed and the store closed, then the admin listener; exit 0.
 * A second signal closes the connections still open at once (the audit flush still happens).
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from './config/schema.js';
import { createServer, type AuthServer } from './index.js';
import { startAdminListener, type AdminListener } from './admin/listener.js';
import type { CommandIO } from './cli/commands.js';
import { DEMO_PATH } from './demo/config.js';
import { startNotesServer, type NotesServer } from './demo/notes-server.js';

export async function serve(config: Config, io: CommandIO): Promise<number> {
  const server = await createServer(config);
  const http = createHttpServer(server.app.callback());
  http.requestTimeout = 30_000;
  http.headersTimeout = 10_000;
  let admin: AdminListener | undefined;
  try {
    if (config.admin.enabled) {
      admin = await startAdminListener({ port: config.admin.port, host: config.admin.host, readiness: server.readiness, metrics: server.metrics, log: server.log });
    }
    await new Promise<void>((resolve, reject) => {
      http.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(err.code === 'EADDRINUSE' ? `cannot listen on ${config.host}:${config.port}: the port is in use (set PORT or port)` : `cannot listen on ${config.host}:${config.port}: ${err.code ?? err.message}`)),
      );
      http.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    await admin?.close();
    await server.close();
    await flushLog(server.log);
    throw err;
  }
  // the first readiness check, so the `ready` gauge is right before anyone asks
  await server.readiness.check();

  const accounts = await server.store.accounts.list();
  const cli = 'npm run mcp-authz --';
  const notes = config.demo ? await startNotesServer({ ...config, demo: config.demo }) : undefined;
  const setupLink = await server.demo?.setupLink();
  io.stderr.write(
    [
      '',
      `mcp-authz is listening on ${config.issuer} (store: ${server.store.kind === 'sqlite' ? `SQLite in ${config.dataDir}` : 'Redis'})`,
      `  discovery:  ${config.issuer}/.well-known/oauth-authorization-server`,
      `              ${config.issuer}/.well-known/openid-configuration`,
      admin ? `  admin:      ${admin.url}  (/healthz, /readyz, /metrics: keep this port private)` : '  admin:      off (admin.enabled: false)',
      `  resources:  ${config.resources.length ? config.resources.map((r) => r.uri).join(', ') : 'none configured yet (see docs/configuration.md)'}`,
      accounts.length
        ? `  accounts:   ${accounts.length}; add more with: ${cli} user add NAME`
        : setupLink
          ? '  no accounts yet: create the first with the set-up link below'
          : `  no accounts yet; add one with: ${cli} user add alice --role admin   (the password is read from stdin)`,
      ...(config.demo ? demoLines(config.issuer, config.resources[0]!.uri, notes!, setupLink) : []),
      '',
    ].join('\n') + '\n',
  );

  return new Promise<number>((resolve) => {
    let stopping: Promise<void> | undefined;
    const hurry = new AbortController();
    const shutdown = (signal: string) => {
      if (stopping) {
        server.log.warn({ signal }, 'second signal: closing the connections still open');
        hurry.abort();
        http.closeAllConnections();
        return;
      }
      server.log.info({ signal, gracePeriod: config.shutdown.gracePeriod }, 'shutting down');
      stopping = gracefulShutdown(server, http, admin, config.shutdown, hurry.signal, notes && 'close' in notes ? () => notes.close() : undefined);
      stopping.then(
        () => resolve(0),
        (err: Error) => {
          server.log.error({ err: { message: err.message } }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  });
}

/** Steps 1–5 of the header. */
async function gracefulShutdown(
  server: AuthServer,
  http: Server,
  admin: AdminListener | undefined,
  { gracePeriod, drainDelay }: Config['shutdown'],
  hurry: AbortSignal,
  closeNotes?: () => Promise<void>,
): Promise<void> {
  const started = Date.now();
  const graceMs = gracePeriod * 1000;
  server.readiness.drain();
  if (drainDelay > 0) await sleep(drainDelay * 1000, undefined, { signal: hurry }).catch(() => {});
  // the demo's MCP server follows this server's feed: it goes first
  await closeNotes?.();
  const closed = new Promise<void>((resolve) => http.close(() => resolve()));
  // feed streams never end by themselves: end them, asking followers to reconnect elsewhere
  await server.hub.stop();
  // a keep-alive connection whose request has finished is closed as soon as it is idle
  http.closeIdleConnections();
  const idle = setInterval(() => http.closeIdleConnections(), 50);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
  const late = await Promise.race([closed.then(() => false), timedOut]);
  clearInterval(idle);
  clearTimeout(timer);
  if (late) {
    server.log.warn({ event: 'shutdown.grace_exceeded', gracePeriodMs: graceMs }, 'requests still in flight after the grace period: closing their connections');
    http.closeAllConnections();
    await closed;
  }
  await server.close();
  server.log.info({ event: 'shutdown.done', ms: Date.now() - started }, 'stopped: requests finished, audit log flushed, store closed');
  await admin?.close();
  await flushLog(server.log);
}

/**
 * Writes out what the log still buffers, while the event loop runs: a write to a standard output
 * whose reader is gone then fails (EPIPE) and the log stops writing. Left to the exit handler, the
 * same lines would be written synchronously, and sonic-boom retries a failed synchronous write
 * forever: the process would never exit. Bounded, for a reader that is alive but stuck.
 */
async function flushLog(log: AuthServer['log']): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2000);
    timer.unref();
    try {
      log.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

/** What the demo offers, and the next steps a person can follow. */
function demoLines(issuer: string, mcpUrl: string, notes: NotesServer, setupLink: string | undefined): string[] {
  return [
    '',
    '  DEMO: started without a config file, so this is a demo (with a config file it is off; README, "Try it").',
    'problem' in notes ? `    MCP server:  ${mcpUrl} did not start: ${notes.problem}` : `    MCP server:  ${mcpUrl}   the example Notes server, protected by this authorization server`,
    setupLink
      ? `    1. Create your account with this one-time link (valid 24 hours, or until the next start):\n         ${setupLink}`
      : '    1. Sign in with an account you created (accounts exist, so there is no set-up link).',
    `    2. In a browser: ${issuer}${DEMO_PATH}   (an MCP host page: connect, sign in, allow, call a tool)`,
    `       Or point any MCP client at ${mcpUrl}, e.g. npx @modelcontextprotocol/inspector: it registers itself and signs you in here.`,
    `    3. See and revoke what you allowed: ${issuer}/account/apps`,
  ];
}
