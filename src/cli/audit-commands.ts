/**
 * `mcp-authz audit ...`: read the audit log back and check it.
 *
 *   audit verify [--file F ...]                 check every chain; exit 0 "ok: …", exit 1 one problem per line
 *   audit tail [--lines N] [--file F ...]       the last N records (default 20), JSON lines
 *   audit search [--user U] [--subject S] [--client C] [--event E] [--tool N] [--since T] [--file F ...]
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
  mcp-authz audit search [--user U] [--subject S] [--client C] [--event E] [--tool N] [--since T] [--file FILE ...]
      U: a username or an account id (what the account did, or was done to it);
      S: a username or an account id: the person's story — sign-ins, consents, tokens, tool
         calls, and every event of the grants they consented to;
      E: an event name or its family (e.g. "token"); N: a tool name (tool calls and approvals);
      T: an ISO time or a duration back from now (30s, 15m, 2h, 7d)
`;

const FLAGS: Record<string, string[]> = {
  verify: ['file'],
  tail: ['file', 'lines'],
  search: ['file', 'user', 'subject', 'client', 'event', 'tool', 'since'],
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
    return await search(source, store, io, { user: flags.user?.[0], subject: flags.subject?.[0], client: flags.client?.[0], event, tool: flags.tool?.[0], since });
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
  subject: string | undefined;
  client: string | undefined;
  event: string | undefined;
  tool: string | undefined;
  since: number | undefined;
}

/** A username (resolved to its account id) or an id as given (e.g. of a removed account, or cli:NAME). */
async function accountIds(store: Store, given: string | undefined): Promise<Set<string>> {
  const ids = new Set<string>();
  if (given === undefined) return ids;
  ids.add(given);
  const account = await store.accounts.findByUsername(given);
  if (account) ids.add(account.id);
  return ids;
}

async function search(source: AuditSource, store: Store, io: CommandIO, filter: SearchFilter): Promise<number> {
  const users = await accountIds(store, filter.user);
  const subjects = await accountIds(store, filter.subject);
  /** the subject's grants met so far: later events of a grant (a revocation by the client, say) belong to the story */
  const grants = new Set<string>();
  let unreadable = 0;
  for await (const { text } of source.lines(filter.since !== undefined ? { sinceMs: filter.since } : {})) {
    const record = text === undefined ? undefined : parseAuditLine(text);
    if (!record) {
      if (!source.mixed && text?.trim() !== '') unreadable++;
      continue;
    }
    // first: the subject's grants are learned from records the other filters leave out
    if (filter.subject !== undefined && !matchesSubject(record, subjects, grants)) continue;
    if (filter.client !== undefined && record.client !== filter.client) continue;
    if (filter.event !== undefined && record.event !== filter.event && !String(record.event).startsWith(`${filter.event}.`)) continue;
    if (filter.since !== undefined && !(Date.parse(String(record.time)) >= filter.since)) continue;
    if (filter.user !== undefined && !matchesUser(record, users)) continue;
    if (filter.tool !== undefined && detail(record, 'tool') !== filter.tool) continue;
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

function detail(record: Record<string, unknown>, key: string): unknown {
  const details = record.details as Record<string, unknown> | undefined;
  return details && typeof details === 'object' ? details[key] : undefined;
}

/**
 * The person's own events (actor, or `details.accountId`), and any event of a grant met in
 * one of them (consent, tokens, tool calls and revocations all name `details.grantId`).
 */
function matchesSubject(record: Record<string, unknown>, subjects: Set<string>, grants: Set<string>): boolean {
  const grantId = detail(record, 'grantId');
  const own = matchesUser(record, subjects);
  if (own && typeof grantId === 'string') grants.add(grantId);
  return own || (typeof grantId === 'string' && grants.has(grantId));
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
