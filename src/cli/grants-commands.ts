/**
 * `mcp-authz grants ...`: the grants people gave to clients, for operators.
 *
 *   grants list [--user USERNAME] [--client CLIENT_ID]   tab-separated: GRANT ID, USER, CLIENT, CREATED, LAST USED
 *   grants revoke GRANT_ID                               revoke the grant and every token of it
 *
 * No server needs to run: the store is used directly, and a revocation is appended to the
 * shared revocation log, which every server streams to the verifiers following its feed.
 *
 * Exit codes: 0 done; 1 no such user or grant; 2 the command line is wrong.
 */
import type { Store } from '../../adapters/contract.js';
import type { Config } from '../config/schema.js';
import { longestAccessTokenTtl } from '../keys/timing.js';
import { revocationPublisher } from '../revocation/publisher.js';
import { revokeGrant } from '../grants/revoke.js';
import type { CommandLine } from './args.js';
import type { CommandIO } from './commands.js';
import { cliActor } from '../audit/log.js';

export const GRANTS_USAGE = `usage:
  mcp-authz grants list [--user USERNAME] [--client CLIENT_ID]   list grants, newest first
  mcp-authz grants revoke GRANT_ID                               revoke a grant and every token of it
`;

function usage(io: CommandIO, message: string): number {
  io.stderr.write(`mcp-authz: ${message}\n\n${GRANTS_USAGE}`);
  return 2;
}

export async function runGrantsCommand(commandLine: CommandLine, store: Store, config: Config, io: CommandIO): Promise<number> {
  const { subcommand, args, flags } = commandLine;
  if (subcommand === 'list') {
    const unknown = Object.keys(flags).filter((f) => f !== 'user' && f !== 'client');
    if (unknown.length) return usage(io, `grants list does not take --${unknown[0]}`);
    if (args.length) return usage(io, 'grants list takes no arguments');
    if ((flags.user?.length ?? 0) > 1 || (flags.client?.length ?? 0) > 1) return usage(io, 'give --user and --client at most once each');
    return list(store, io, flags.user?.[0], flags.client?.[0]);
  }
  if (subcommand === 'revoke') {
    if (Object.keys(flags).length) return usage(io, `grants revoke does not take --${Object.keys(flags)[0]}`);
    if (args.length !== 1 || !args[0]) return usage(io, 'grants revoke needs exactly one GRANT_ID');
    return revoke(store, config, io, args[0]);
  }
  return usage(io, `unknown grants subcommand "${subcommand ?? ''}"`);
}

async function list(store: Store, io: CommandIO, username: string | undefined, clientId: string | undefined): Promise<number> {
  let accountId: string | undefined;
  if (username !== undefined) {
    const account = await store.accounts.findByUsername(username);
    if (!account) {
      io.stderr.write(`mcp-authz: no user named "${oneLine(username)}"\n`);
      return 1;
    }
    accountId = account.id;
  }
  const grants = await store.grants.list({ ...(accountId ? { accountId } : {}), ...(clientId !== undefined ? { clientId } : {}) });
  const names = new Map<string, string>();
  for (const { accountId: id } of grants) {
    if (!names.has(id)) names.set(id, (await store.accounts.findById(id))?.username ?? `(removed account ${id})`);
  }
  const time = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString());
  io.stdout.write(`${['GRANT ID', 'USER', 'CLIENT', 'CREATED', 'LAST USED'].join('\t')}\n`);
  for (const g of grants) {
    io.stdout.write(`${[g.grantId, names.get(g.accountId)!, oneLine(g.clientId), time(g.createdAt), time(g.lastUsedAt)].join('\t')}\n`);
  }
  return 0;
}

async function revoke(store: Store, config: Config, io: CommandIO, grantId: string): Promise<number> {
  const publisher = revocationPublisher(store.revocations, longestAccessTokenTtl(config));
  const record = await store.grants.get(grantId);
  const done = await revokeGrant(store, publisher, grantId);
  io.audit?.record({
    event: 'admin.grant_revoked',
    outcome: done ? 'success' : 'failure',
    actor: cliActor(),
    ...(record ? { client: record.clientId } : {}),
    details: { grantId: grantId.slice(0, 512), ...(record ? { accountId: record.accountId } : {}), ...(done ? {} : { reason: 'not_found' }) },
  });
  if (!done) {
    io.stderr.write(`mcp-authz: no grant "${oneLine(grantId)}" (see mcp-authz grants list)\n`);
    return 1;
  }
  io.stdout.write(`revoked grant ${grantId}; its tokens are refused from now on\n`);
  return 0;
}

/** Ids may come from clients (a client id is a URL or a registered name): no control characters reach the terminal. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}
