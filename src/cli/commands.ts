/**
 * Runs one parsed command line against a loaded configuration.
 */
import type { Config } from '../config/schema.js';
import { openStore } from '../../adapters/index.js';
import type { CommandLine } from './args.js';
import { runUserCommand } from './user-commands.js';
import { runKeysCommand } from './keys-commands.js';

export interface CommandIO {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export async function runCommand(commandLine: CommandLine, config: Config, io: CommandIO): Promise<number> {
  if (commandLine.command === 'serve') {
    // loaded only to serve: account and key commands need neither koa nor oidc-provider
    const { serve } = await import('../serve.js');
    return serve(config, io);
  }
  const store = await openStore({ dataDir: config.dataDir, redisUrl: config.redisUrl, redisKeyPrefix: config.redisKeyPrefix });
  try {
    if (commandLine.command === 'user') return await runUserCommand(commandLine, store, io);
    return await runKeysCommand(commandLine, store, config, io);
  } finally {
    await store.close();
  }
}
