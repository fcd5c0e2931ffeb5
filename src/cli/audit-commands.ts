/**
 * `mcp-authz audit ...`: read the audit log back and check it.
 *
 *   audit verify [--file F ...]                 check every chain; exit 0 "ok: …", exit 1 one problem per line
 *   audit tail [--lines N] [--file F ...]       the last N records (default 20), JSON lines
 *   audit search [--user U] [--client C] [--event E] [--since T] [--file F ...]
 *                                               matching records, oldest first, JSON lines
 *
 * The configured sink is read (the files in `<dataDir>/audit/`, or the Redis stream); with
 * the stdout sink, `--file` names the collected output (log lines in it are skipped).
 * Exit codes: 0 done; 1 verify found problems (or a user was not found); 2 the command line is wrong.
 */
import type { Store } from '../../adapters/contract.js';
import type { Config } from '../config/schema.js';
import { AUDIT_EVENTS, AUDIT_USER_DETAIL_KEYS } from '../audit/events.js';
import { openAuditSource, parseAuditLine, SourceUsageError, verifySource, type AuditSource } from '../audit/read.js';
import type { CommandLine } from './args.js';
import type { CommandIO } from './commands.js';

export const AUDIT_USAGE = `usage:
  mcp-authz audit verify [--file FILE ...]            check the hash chains and checkpoints
  mcp-authz audit tail [--lines N] [--file FILE ...]  the last N records (default 20)
  mcp-authz audit search [--user U] [--client C] [--event E] [--since T] [--file FILE ...]
      U: a username or an account id; E: an event name or its family (e.g. "token");
      T: an ISO time or a duration back from now (30s, 15m, 2h, 7d)
`;

const FLAGS: Record<string, string[]> = {
  verify: ['file'],
  tail: ['file', 'lines'],
  search: ['file', 'user', 'client', 'event', 'since'],
};

function usage(io: CommandIO, message: string): number {
  io.stderr.write(`mcp-authz: ${message}\n\n${AUDIT_USAGE}`);
  return 2;
}

export async function runAuditCommand(commandLine: CommandLine, store: Store, config: Config, io: CommandIO): Promise<number> {
  const { subcommand = '', args, flags } = commandLine;
  const allowed = FLAGS[subcommand];
  if (!allowed) return usage(io, `unknown audit subcommand "${oneLine(subcommand)}"`);
  const unknown = Object.keys(flags).find((f) => !allowed.includes(f));
  if (unknown) return usage(io, `audit ${subcommand} does not take --${unknown}`);
  if (args.length) return usage(io, `audit ${subcommand} takes no arguments`);
  for (const name of allowed) {
    if (name !== 'file' && (flags[name]?.length ?? 0) > 1) return usage(io, `give --${name} at most once`);
  }

  let lines = 20;
  if (flags.lines) {
    lines = Number(flags.lines[0]);
    if (!Number.isInteger(lines) || lines < 1 || lines > 1_000_000) return usage(io, '--lines needs a whole number from 1 to 1000000');
  }
  let since: number | undefined;
  if (flags.since) {
    since = parseSince(flags.since[0]!, Date.now());
    if (since === undefined) return usage(io, `--since needs an ISO time or a duration such as 15m, 2h or 7d, not "${oneLine(flags.since[0]!)}"`);
  }
  const event = flags.event?.[0];
  if (event !== undefined && !AUDIT_EVENTS.some((e) => e === event || e.startsWith(`${event}.`))) {
    return usage(io, `unknown event "${oneLine(event)}" (one of: ${AUDIT_EVENTS.join(', ')}, or a family such as "token")`);
  }

  let source: AuditSource;
  try {
    source = openAuditSource(config, flags.file ?? []);
  } catch (err) {
    if (err instanceof SourceUsageError) return usage(io, err.message);
    throw err;
  }
  try {
    if (subcommand === 'verify') return await verify(source, store, io);
    if (subcommand === 'tail') {
      for (const text of await source.last(lines)) io.stdout.write(`${JSON.stringify(parseAuditLine(text))}\n`);
      return 0;
    }
    return await search(source, store, io, { user: flags.user?.[0], client: flags.client?.[0], event, since });
  } finally {
    await source.close();
  }
}

async function verify(source: AuditSource, store: Store, io: CommandIO): Promise<number> {
  const result = await verifySource(source, store.settings);
  const { problems, notes } = result;
  const summary = `${result.records} record(s) in ${result.chains} chain(s) from ${source.description}${source.mixed ? ` (${result.skipped} other line(s) skipped)` : ''}`;
  if (problems.length === 0) {
    io.stdout.write(`ok: ${summary}\n`);
    for (const note of notes) io.stdout.write(`note: ${oneLine(note)}\n`);
    return 0;
  }
  for (const p of problems) io.stdout.write(`${oneLine(p.location)}: ${p.kind}: ${oneLine(p.message)}\n`);
  for (const note of notes) io.stdout.write(`note: ${oneLine(note)}\n`);
  io.stdout.write(`FAILED: ${problems.length} problem(s) in ${summary}\n`);
  return 1;
}

interface SearchFilter {
  user: string | undefined;
  client: string | undefined;
  event: string | undefined;
  since: number | undefined;
}

async function search(source: AuditSource, store: Store, io: CommandIO, filter: SearchFilter): Promise<number> {
  // a username is resolved to its account id; anything else is taken as an id (e.g. of a removed account, or cli:NAME)
  const users = new Set<string>();
  if (filter.user !== undefined) {
    users.add(filter.user);
    const account = await store.accounts.findByUsername(filter.user);
    if (account) users.add(account.id);
  }
  let unreadable = 0;
  for await (const { text } of source.lines(filter.since !== undefined ? { sinceMs: filter.since } : {})) {
    const record = text === undefined ? undefined : parseAuditLine(text);
    if (!record) {
      if (!source.mixed && text?.trim() !== '') unreadable++;
      continue;
    }
    if (filter.client !== undefined && record.client !== filter.client) continue;
    if (filter.event !== undefined && record.event !== filter.event && !String(record.event).startsWith(`${filter.event}.`)) continue;
    if (filter.since !== undefined && !(Date.parse(String(record.time)) >= filter.since)) continue;
    if (filter.user !== undefined && !matchesUser(record, users)) continue;
    io.stdout.write(`${JSON.stringify(record)}\n`);
  }
  if (unreadable) io.stderr.write(`mcp-authz: ${unreadable} line(s) were not audit records (run mcp-authz audit verify)\n`);
  return 0;
}

/** The actor, or the account an administrative event is about (`details.accountId` / `details.username`). */
function matchesUser(record: Record<string, unknown>, users: Set<string>): boolean {
  if (typeof record.actor === 'string' && users.has(record.actor)) return true;
  const details = record.details as Record<string, unknown> | undefined;
  if (!details || typeof details !== 'object') return false;
  return AUDIT_USER_DETAIL_KEYS.some((key) => typeof details[key] === 'string' && users.has(details[key]));
}

/** An ISO time, or a duration back from `now`: 30s, 15m, 2h, 7d. Epoch ms, or undefined when neither. */
export function parseSince(text: string, now: number): number | undefined {
  const duration = /^(\d{1,9})([smhd])$/.exec(text);
  if (duration) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[duration[2] as 's' | 'm' | 'h' | 'd'];
    return now - Number(duration[1]) * unit;
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const time = Date.parse(text);
  return Number.isNaN(time) ? undefined : time;
}

/** Locations and messages may carry record content: no control characters reach the terminal. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}
