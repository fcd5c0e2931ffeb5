/**
 * `mcp-authz user ...`: manage local accounts from the command line.
 *
 *   user add NAME [--role ROLE ...]   create an account
 *   user list                         list accounts (username, sign-in: local or connection, roles, created)
 *   user remove NAME                  delete an account
 *   user passwd NAME                  set a new password
 *   user roles NAME --role ROLE ...   replace the roles
 *   user reset-second-factors NAME    remove every second factor (TOTP, passkeys, recovery codes)
 *
 * Passwords come from standard input only (see ./read-secret.ts), never from argv, and
 * are never printed, nor are their hashes.
 *
 * Exit codes: 0 done; 1 the operation failed (no such user, name taken, password
 * refused); 2 the command line is wrong (unknown subcommand, missing or malformed NAME
 * or role, unexpected arguments or flags); 130 interrupted with Ctrl-C at a prompt.
 */
import type { Store } from '../../adapters/contract.js';
import { revocationPublisher, type RevocationPublisher } from '../revocation/publisher.js';
import { revokeAllForAccount } from '../grants/revoke.js';
import { MAX_ACCESS_TOKEN_TTL } from '../config/schema.js';
import { AccountExistsError, AccountInputError, AccountNotFoundError, createAccountService, type AccountService } from '../accounts/service.js';
import { rolesSchema, usernameSchema } from '../accounts/schema.js';
import { UsageError, type CommandLine } from './args.js';
import type { CommandIO } from './commands.js';
import type { AuditEvent } from '../audit/events.js';
import { cliActor } from '../audit/log.js';
import { createSecretReader, SecretInputError, SecretInterruptedError, type SecretReader } from './read-secret.js';

export const USER_USAGE = `usage:
  mcp-authz user add NAME [--role ROLE ...]   create an account; the password is read from stdin
  mcp-authz user list                         list accounts
  mcp-authz user remove NAME                  delete an account
  mcp-authz user passwd NAME                  set a new password, read from stdin
  mcp-authz user roles NAME --role ROLE ...   replace the account's roles
  mcp-authz user reset-second-factors NAME    remove the account's second factors (a lost device,
                                              or a record that needs attention); the person enrols again
`;

/** What each subcommand accepts: its positional arguments and its flags. */
const SUBCOMMANDS: Record<string, { args: string[]; flags: string[] }> = {
  add: { args: ['NAME'], flags: ['role'] },
  list: { args: [], flags: [] },
  remove: { args: ['NAME'], flags: [] },
  passwd: { args: ['NAME'], flags: [] },
  roles: { args: ['NAME'], flags: ['role'] },
  'reset-second-factors': { args: ['NAME'], flags: [] },
};

interface Context {
  store: Store;
  accounts: AccountService;
  revocations: RevocationPublisher;
  io: CommandIO;
  secrets: () => SecretReader;
}

/** The audit event of each subcommand that changes an account. */
const EVENTS: Record<string, AuditEvent['event']> = {
  add: 'admin.user_added',
  remove: 'admin.user_removed',
  passwd: 'admin.user_password_changed',
  roles: 'admin.user_roles_changed',
  'reset-second-factors': 'second_factor.removed',
};

/** Records an operator's action on an account (never the password). */
function recordAdmin(io: CommandIO, event: AuditEvent['event'], outcome: AuditEvent['outcome'], details: NonNullable<AuditEvent['details']>): void {
  io.audit?.record({ event, outcome, actor: cliActor(), details });
}

export async function runUserCommand(commandLine: CommandLine, store: Store, io: CommandIO): Promise<number> {
  let reader: SecretReader | undefined;
  const ctx: Context = {
    store,
    accounts: createAccountService(store.accounts),
    // the schema caps an access token's life at a day: a removal matters at most that long
    revocations: revocationPublisher(store.revocations, MAX_ACCESS_TOKEN_TTL),
    io,
    secrets: () => (reader ??= createSecretReader(io)),
  };
  let sub: string | undefined;
  try {
    sub = checkCommandLine(commandLine);
    const [name] = commandLine.args;
    const roles = commandLine.flags.role ?? [];
    switch (sub) {
      case 'add':
        return await add(ctx, username(name), roleList(roles));
      case 'list':
        return await list(ctx);
      case 'remove':
        return await remove(ctx, username(name));
      case 'passwd':
        return await passwd(ctx, username(name));
      case 'reset-second-factors':
        return await resetSecondFactors(ctx, username(name));
      default:
        if (roles.length === 0) throw new UsageError('user roles needs at least one --role');
        return await setRoles(ctx, username(name), roleList(roles));
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`mcp-authz: ${err.message}\n\n${USER_USAGE}`);
      return 2;
    }
    if (err instanceof SecretInterruptedError) return 130;
    if (
      err instanceof AccountExistsError ||
      err instanceof AccountNotFoundError ||
      err instanceof AccountInputError ||
      err instanceof SecretInputError
    ) {
      const event = sub === undefined ? undefined : EVENTS[sub];
      const parsed = usernameSchema.safeParse(commandLine.args[0]);
      if (event) recordAdmin(io, event, 'failure', { reason: err.name, ...(parsed.success ? { username: parsed.data } : {}) });
      io.stderr.write(`mcp-authz: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    reader?.close();
  }
}

/** Throws a {@link UsageError} unless the subcommand, its arguments and flags are right. */
function checkCommandLine({ subcommand, args, flags }: CommandLine): string {
  const spec = subcommand === undefined ? undefined : SUBCOMMANDS[subcommand];
  if (!spec) throw new UsageError(`unknown user subcommand "${subcommand ?? ''}"`);
  for (const flag of Object.keys(flags)) {
    if (flag === 'password') throw new UsageError('passwords are never taken from the command line: they are read from standard input');
    if (!spec.flags.includes(flag)) throw new UsageError(`user ${subcommand} does not take --${flag}`);
  }
  if (args.length < spec.args.length) throw new UsageError(`user ${subcommand} needs ${spec.args.slice(args.length).join(' ')}`);
  if (args.length > spec.args.length) {
    // not echoed: a stray argument may be a password typed where it does not belong
    const takes = spec.args.length ? `only ${spec.args.join(' ')}` : 'no arguments';
    throw new UsageError(`user ${subcommand} takes ${takes} (got ${args.length}); passwords are read from standard input`);
  }
  return subcommand!;
}

function username(value: string | undefined): string {
  const result = usernameSchema.safeParse(value);
  if (!result.success) throw new UsageError(`invalid NAME "${value}": ${result.error.issues[0]?.message}`);
  return result.data;
}

function roleList(values: string[]): string[] {
  const result = rolesSchema.safeParse(values);
  if (!result.success) {
    const issue = result.error.issues[0];
    const at = typeof issue?.path[0] === 'number' ? ` "${values[issue.path[0]]}"` : '';
    throw new UsageError(`invalid --role${at}: ${issue?.message}`);
  }
  return result.data;
}

/**
 * Reads a new password: on a terminal, twice, so a typo does not lock the user out;
 * from a pipe, the first line.
 */
async function newPassword(ctx: Context): Promise<string> {
  const reader = ctx.secrets();
  const password = await reader.read('Password: ');
  if (reader.interactive && (await reader.read('Repeat password: ')) !== password) {
    throw new SecretInputError('the passwords do not match');
  }
  return password;
}

async function add(ctx: Context, name: string, roles: string[]): Promise<number> {
  const { accounts, io } = ctx;
  // fail before prompting, not after the password was typed twice
  if (await accounts.findByUsername(name)) throw new AccountExistsError(name);
  const password = await newPassword(ctx);
  const account = await accounts.create(name, password, roles);
  recordAdmin(io, 'admin.user_added', 'success', { username: account.username, accountId: account.id, roles: account.roles });
  io.stdout.write(`created user ${account.username} (id ${account.id}; roles: ${rolesText(account.roles)})\n`);
  return 0;
}

async function passwd(ctx: Context, name: string): Promise<number> {
  const { accounts, io } = ctx;
  const account = await accounts.findByUsername(name);
  if (!account) throw new AccountNotFoundError(name);
  const password = await newPassword(ctx);
  await accounts.setPassword(name, password);
  recordAdmin(io, 'admin.user_password_changed', 'success', { username: name, accountId: account.id });
  io.stdout.write(`password changed for user ${name}\n`);
  return 0;
}

async function remove({ store, accounts, revocations, io }: Context, name: string): Promise<number> {
  const account = await accounts.findByUsername(name);
  if (!account) throw new AccountNotFoundError(name);
  await accounts.remove(name);
  // their grants go, with every token of them, and tokens already issued to this person stop
  // working at every MCP server that follows the feed
  const revoked = await revokeAllForAccount(store, revocations, account.id);
  recordAdmin(io, 'admin.user_removed', 'success', { username: name, accountId: account.id, grantIds: revoked });
  io.stdout.write(`removed user ${name}; their access tokens and ${revoked.length} grant${revoked.length === 1 ? '' : 's'} are revoked\n`);
  return 0;
}

async function resetSecondFactors({ accounts, store, io }: Context, name: string): Promise<number> {
  const account = await accounts.findByUsername(name);
  if (!account) throw new AccountNotFoundError(name);
  await store.accounts.update(name, { secondFactors: '' });
  recordAdmin(io, 'second_factor.removed', 'success', { username: name, accountId: account.id, method: 'all', by: 'operator' });
  io.stdout.write(`second factors of user ${name} removed${account.secondFactors ? '' : ' (there were none)'}
`);
  return 0;
}

async function setRoles({ accounts, io }: Context, name: string, roles: string[]): Promise<number> {
  await accounts.setRoles(name, roles);
  const account = await accounts.findByUsername(name);
  recordAdmin(io, 'admin.user_roles_changed', 'success', { username: name, roles, ...(account ? { accountId: account.id } : {}) });
  io.stdout.write(`roles of user ${name}: ${rolesText(roles)}\n`);
  return 0;
}

async function list({ accounts, io }: Context): Promise<number> {
  const all = await accounts.list();
  if (all.length === 0) {
    io.stderr.write('no accounts\n');
    return 0;
  }
  // SIGN-IN: `local` (a password), or the connection that provisioned the account
  const rows = all.map((a) => [a.username, a.connection ?? 'local', rolesText(a.roles), new Date(a.createdAt).toISOString().replace(/\.\d{3}Z$/, 'Z')]);
  io.stdout.write(table(['USERNAME', 'SIGN-IN', 'ROLES', 'CREATED'], rows));
  return 0;
}

function rolesText(roles: string[]): string {
  return roles.length ? roles.join(',') : '-';
}

/** Left-aligned columns separated by two spaces. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
