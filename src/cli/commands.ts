/**
 * Runs one parsed command line against a loaded configuration.
 */
import type { Config } from '../config/schema.js';
import { openStore } from '../../adapters/index.js';
import { storeOptions } from '../config/redis.js';
import type { CommandLine } from './args.js';
import { runUserCommand } from './user-commands.js';
import { runKeysCommand } from './keys-commands.js';
import { runClientsCommand } from './clients-commands.js';
import { runGrantsCommand } from './grants-commands.js';
import { runAuditCommand } from './audit-commands.js';
import type { AuditLog } from '../audit/events.js';
import { createAuditLog } from '../audit/log.js';
import { createLogger } from '../observability/logger.js';
import { registerEngineFix } from '../provider/engine-fix-hook.js';

export interface CommandIO {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /**
   * The audit log of this invocation (its own chain), set by runCommand for every command
   * but serve and audit; record admin events with actor `cliActor()` (src/audit/log.ts).
   */
  audit?: AuditLog;
}

export async function runCommand(commandLine: CommandLine, config: Config, io: CommandIO): Promise<number> {
  if (commandLine.command === 'serve') {
    // loaded only to serve: account and key commands need neither koa nor oidc-provider, nor
    // the module hook that applies our one fix to the engine as it loads (src/provider/engine-fix.ts)
    registerEngineFix();
    const { serve } = await import('../serve.js');
    return serve(config, io);
  }
  const store = await openStore(storeOptions(config));
  let audit: AuditLog | undefined;
  try {
    if (commandLine.command === 'audit') return await runAuditCommand(commandLine, store, config, io);
    // the CLI's own chain; with the stdout sink its records go to stderr, keeping command output clean
    audit = createAuditLog({ config, store, log: createLogger(config.logLevel, io.stderr), out: io.stderr, role: 'cli' });
    const withAudit: CommandIO = { ...io, audit };
    if (commandLine.command === 'user') return await runUserCommand(commandLine, store, withAudit);
    if (commandLine.command === 'clients') return await runClientsCommand(commandLine, store, config, withAudit);
    if (commandLine.command === 'grants') return await runGrantsCommand(commandLine, store, config, withAudit);
    return await runKeysCommand(commandLine, store, config, withAudit);
  } finally {
    await audit?.close();
    await store.close();
  }
}
