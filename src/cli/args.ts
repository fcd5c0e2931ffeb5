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
  clients list [--kind KIND]      list clients (static, cimd, dcr) with their last use
  grants list [--user USERNAME] [--client CLIENT_ID]
                                  list the grants people gave to clients, newest first
  grants revoke GRANT_ID          revoke a grant and every token of it
  audit verify [--file FILE ...]  check the audit log's hash chains and checkpoints
  audit tail [--lines N]          the last N audit records (default 20), as JSON lines
  audit search [--user U] [--client C] [--event E] [--since T]
                                  audit records matching every filter (T: ISO time or 15m, 2h, 7d)
  help                            show this text

environment: PORT, HOST, ISSUER, DATA_DIR, REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_NAME,
             REDIS_CLUSTER_NODES, REDIS_PASSWORD, REDIS_PASSWORD_FILE, REDIS_TLS, MCP_AUTHZ_CONFIG,
             LOG_LEVEL, TRUST_PROXY, MCP_AUTHZ_REGISTRATION_TOKEN
`;

export interface CommandLine {
  command: 'serve' | 'user' | 'keys' | 'clients' | 'grants' | 'audit' | 'help';
  /** e.g. "add" for `user add` */
  subcommand?: string | undefined;
  /** positional arguments after the subcommand */
  args: string[];
  /** repeated flags collect every value: `--role a --role b` → { role: ['a', 'b'] } */
  flags: Record<string, string[]>;
  configPath?: string | undefined;
}

const COMMANDS = new Set(['serve', 'user', 'keys', 'clients', 'grants', 'audit', 'help']);

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
  return { command: command as 'user' | 'keys' | 'clients' | 'grants' | 'audit', subcommand, args, flags, configPath };
}
