/**
 * `mcp-authz serve`: build the server, listen, say what to do next, and shut down
 * cleanly on SIGINT/SIGTERM (stop accepting, let requests finish, close the store).
 */
import { createServer as createHttpServer } from 'node:http';
import type { Config } from './config/schema.js';
import { createServer } from './index.js';
import type { CommandIO } from './cli/commands.js';
import { DEMO_PATH } from './demo/config.js';
import { startNotesServer, type NotesServer } from './demo/notes-server.js';

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
  const notes = config.demo ? await startNotesServer({ ...config, demo: config.demo }) : undefined;
  const setupLink = await server.demo?.setupLink();
  io.stderr.write(
    [
      '',
      `mcp-authz is listening on ${config.issuer} (store: ${server.store.kind === 'sqlite' ? `SQLite in ${config.dataDir}` : 'Redis'})`,
      `  discovery:  ${config.issuer}/.well-known/oauth-authorization-server`,
      `              ${config.issuer}/.well-known/openid-configuration`,
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
    let closing = false;
    const shutdown = (signal: string) => {
      if (closing) return;
      closing = true;
      server.log.info({ signal }, 'shutting down');
      http.close(() => {
        Promise.all([server.close(), notes && 'close' in notes ? notes.close() : undefined]).then(
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
