/**
 * Command-line parsing: `mcp-authz [--config FILE] <command> [subcommand] [args] [--flag value ...]`.
 * Secrets are never taken from argv: passwords are read from stdin.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const USAGE = `usage: mcp-authz [--config FILE] <command>

commands:
  serve                           start the authorization server (default)
  user add NAME [--role ROLE ...] create a local account; the password is read from stdin
  user list                       list accounts
  user remove NAME                delete an account
  user passwd NAME                set a new password, read from stdin
  user roles NAME --role ROLE ... replace an account's roles
  keys list                       list signing keys
  keys rotate                     add a new signing key; old ones stay published until their tokens expire
  help                            show this text

environment: PORT, HOST, ISSUER, DATA_DIR, REDIS_URL, MCP_AUTHZ_CONFIG, LOG_LEVEL, TRUST_PROXY
`;

export interface CommandLine {
  command: 'serve' | 'user' | 'keys' | 'help';
  /** e.g. "add" for `user add` */
  subcommand?: string | undefined;
  /** positional arguments after the subcommand */
  args: string[];
  /** repeated flags collect every value: `--role a --role b` → { role: ['a', 'b'] } */
  flags: Record<string, string[]>;
  configPath?: string | undefined;
}

const COMMANDS = new Set(['serve', 'user', 'keys', 'help']);

export function parseCommandLine(argv: string[]): CommandLine {
  const positional: string[] = [];
  const flags: Record<string, string[]> = {};
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return { command: 'help', args: [], flags: {} };
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      }
      if (!/^[a-z][a-z-]*$/.test(name)) throw new UsageError(`unknown option --${name}`);
      if (name === 'config') configPath = value;
      else (flags[name] ??= []).push(value);
      continue;
    }
    positional.push(arg);
  }
  const [command = 'serve', ...rest] = positional;
  if (!COMMANDS.has(command)) throw new UsageError(`unknown command "${command}"`);
  if (command === 'serve' || command === 'help') {
    if (rest.length) throw new UsageError(`${command} takes no arguments`);
    return { command, args: [], flags, configPath };
  }
  const [subcommand, ...args] = rest;
  if (!subcommand) throw new UsageError(`${command} needs a subcommand`);
  return { command: command as 'user' | 'keys', subcommand, args, flags, configPath };
}
