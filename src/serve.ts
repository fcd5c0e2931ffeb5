/**
 * `mcp-authz serve`: build the server, listen, say what to do next, and shut down
 * cleanly on SIGINT/SIGTERM (stop accepting, let requests finish, close the store).
 */
import { createServer as createHttpServer } from 'node:http';
import type { Config } from './config/schema.js';
import { createServer } from './index.js';
import type { CommandIO } from './cli/commands.js';

export async function serve(config: Config, io: CommandIO): Promise<number> {
  const server = await createServer(config);
  const http = createHttpServer(server.app.callback());
  http.requestTimeout = 30_000;
  http.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.port, config.host, () => resolve());
  });

  const accounts = await server.store.accounts.list();
  const cli = 'npm run mcp-authz --';
  io.stderr.write(
    [
      '',
      `mcp-authz is listening on ${config.issuer} (store: ${server.store.kind === 'sqlite' ? `SQLite in ${config.dataDir}` : 'Redis'})`,
      `  discovery:  ${config.issuer}/.well-known/oauth-authorization-server`,
      `              ${config.issuer}/.well-known/openid-configuration`,
      `  resources:  ${config.resources.length ? config.resources.map((r) => r.uri).join(', ') : 'none configured yet (see docs/configuration.md)'}`,
      accounts.length
        ? `  accounts:   ${accounts.length}; add more with: ${cli} user add NAME`
        : `  no accounts yet; add one with: ${cli} user add alice --role admin   (the password is read from stdin)`,
      '',
    ].join('\n') + '\n',
  );

  return new Promise<number>((resolve) => {
    let closing = false;
    const shutdown = (signal: string) => {
      if (closing) return;
      closing = true;
      server.log.info({ signal }, 'shutting down');
      http.close(() => {
        server.close().then(
          () => resolve(0),
          () => resolve(1),
        );
      });
      // revocation feed streams never end by themselves: end them so close() can finish
      void server.hub.stop();
      http.closeIdleConnections();
      setTimeout(() => http.closeAllConnections(), 10_000).unref();
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
}
