/**
 * `mcp-authz clients list`: every client the server knows — configured ones, those seen by
 * their metadata document, those registered dynamically — with its kind and last use.
 */
import type { ClientRecord, Store } from '../../adapters/contract.js';
import type { Config } from '../config/schema.js';
import type { CommandLine } from './args.js';
import type { CommandIO } from './commands.js';

export async function runClientsCommand(commandLine: CommandLine, store: Store, config: Config, io: CommandIO): Promise<number> {
  const { subcommand, args, flags } = commandLine;
  if (subcommand !== 'list') {
    io.stderr.write(`mcp-authz: unknown clients subcommand "${subcommand}" (list)\n`);
    return 2;
  }
  const unknownFlags = Object.keys(flags).filter((f) => f !== 'kind');
  const kinds = flags.kind ?? [];
  if (args.length || unknownFlags.length || kinds.some((k) => !['static', 'cimd', 'dcr'].includes(k))) {
    io.stderr.write('mcp-authz: usage: clients list [--kind static|cimd|dcr]\n');
    return 2;
  }
  const seen = new Map((await store.clients.list()).map((r) => [r.clientId, r]));
  const rows: ClientRecord[] = config.clients.map((c) => ({
    clientId: c.client_id,
    kind: 'static' as const,
    ...(c.client_name ? { name: c.client_name } : {}),
    createdAt: seen.get(c.client_id)?.createdAt ?? NaN,
    ...(seen.get(c.client_id)?.lastUsedAt ? { lastUsedAt: seen.get(c.client_id)!.lastUsedAt! } : {}),
  }));
  const configured = new Set(rows.map((r) => r.clientId));
  for (const record of seen.values()) if (!configured.has(record.clientId)) rows.push(record);
  const shown = rows.filter((r) => kinds.length === 0 || kinds.includes(r.kind)).sort((a, b) => a.kind.localeCompare(b.kind) || a.clientId.localeCompare(b.clientId));

  const time = (ms: number | undefined) => (ms === undefined || Number.isNaN(ms) ? '-' : new Date(ms).toISOString());
  io.stdout.write(`${['CLIENT ID', 'KIND', 'NAME', 'FIRST SEEN', 'LAST USED'].join('\t')}\n`);
  for (const r of shown) io.stdout.write(`${[r.clientId, r.kind, oneLine(r.name ?? '-'), time(r.createdAt), time(r.lastUsedAt)].join('\t')}\n`);
  return 0;
}

/** Names are chosen by clients: no control characters, tabs or newlines reach the terminal. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').slice(0, 80);
}
