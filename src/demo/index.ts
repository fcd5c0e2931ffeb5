/**
 * The demo's pages on the authorization server (only when `config.demo` is set, i.e. started
 * without a config file): `/setup` for the first account from the one-time link, and `/demo`,
 * an MCP host page. The Notes MCP server they work with is started by `mcp-authz serve`
 * (src/demo/notes-server.ts).
 */
import type Router from '@koa/router';
import type { AccountService } from '../accounts/service.js';
import type { AuditLog } from '../audit/events.js';
import type { Config } from '../config/schema.js';
import type { Csrf } from '../http/csrf.js';
import type { Render } from '../http/render.js';
import type { Logger } from '../observability/logger.js';
import { DEMO_PATH, demoResourceUri } from './config.js';
import { demoHostRouter } from './host.js';
import { SetupLink } from './setup-link.js';
import { SETUP_PATH, setupRouter } from './setup.js';

/** The line above every page while the demo runs. */
export const DEMO_BANNER = 'Demo: mcp-authz was started without a config file. Start it with one (README) for real use; the demo is then off.';

export interface Demo {
  routers: Router[];
  /** A new one-time set-up link (the old one stops working) while there is no account; undefined once there is one. */
  setupLink(): Promise<string | undefined>;
}

export interface DemoDeps {
  config: Config & { demo: NonNullable<Config['demo']> };
  accounts: AccountService;
  csrf: Csrf;
  render: Render;
  audit: AuditLog;
  log: Logger;
  basePath: string;
}

export async function createDemo(deps: DemoDeps): Promise<Demo> {
  const { config, accounts, csrf, render, audit, log, basePath } = deps;
  const link = new SetupLink();
  const setup = setupRouter({ accounts, link, csrf, render, audit, log, basePath, next: `${basePath}${DEMO_PATH}` });
  const host = await demoHostRouter({ issuer: config.issuer, basePath, mcpUrl: demoResourceUri(config.demo.mcpPort), csrf, render, log });
  return {
    routers: [setup, host],
    async setupLink() {
      if ((await accounts.list()).length > 0) {
        link.end();
        return undefined;
      }
      return `${config.issuer}${SETUP_PATH}?token=${link.issue()}`;
    },
  };
}
