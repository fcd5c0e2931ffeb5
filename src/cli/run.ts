/**
 * The command line: `mcp-authz [--config FILE] <command>`.
 *   serve                      start the server (default)
 *   user add|list|remove|passwd manage local accounts
 *   keys list|rotate           manage signing keys
 * Every failure exits non-zero with one readable message, never a stack trace.
 */
import { ConfigError, loadConfig } from '../config/load.js';
import { parseCommandLine, UsageError, USAGE } from './args.js';
import { runCommand } from './commands.js';

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

/** Runs one command line; resolves with the process exit code, never rejects. */
export async function run(argv: string[]): Promise<number> {
  try {
    return await main(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mcp-authz: ${err.message}\n`);
      return 78; // EX_CONFIG
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`mcp-authz: ${message}\n`);
    return 1;
  }
}
