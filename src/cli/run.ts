#!/usr/bin/env node
/**
 * Process entry: `mcp-authz [--config FILE] <command>`.
 *   serve                      start the server (default)
 *   user add|list|remove|passwd manage local accounts
 *   keys list|rotate           manage signing keys
 * Every failure exits non-zero with one readable message, never a stack trace.
 */
import { ConfigError, loadConfig } from './config/load.js';
import { parseCommandLine, UsageError, USAGE } from './cli/args.js';
import { runCommand } from './cli/commands.js';

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`mcp-authz: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (parsed.command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const config = loadConfig({ configPath: parsed.configPath });
  return runCommand(parsed, config, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`mcp-authz: ${err.message}\n`);
      process.exitCode = 78; // EX_CONFIG
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`mcp-authz: ${message}\n`);
    process.exitCode = 1;
  },
);
