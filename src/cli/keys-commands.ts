/**
 * `mcp-authz keys list|rotate`: signing keys live in the store, so these work against the
 * same store the servers use; running servers pick a rotation up within keys.reloadInterval.
 * With `keys.file` the keys are the file's: `list` shows them, `rotate` refuses (edit the file).
 */
import type { Store } from '../../adapters/contract.js';
import type { Config } from '../config/schema.js';
import { describeKey, readKeySet, rotateKeys } from '../keys/signing-keys.js';
import { keyTiming } from '../keys/timing.js';
import { readSigningKeysFile, SIGNING_KEYS_SETTING_NAME } from '../keys/secret-files.js';
import type { CommandLine } from './args.js';
import type { CommandIO } from './commands.js';
import { cliActor } from '../audit/log.js';

export async function runKeysCommand(commandLine: CommandLine, store: Store, config: Config, io: CommandIO): Promise<number> {
  const { subcommand, args, flags } = commandLine;
  if (args.length || Object.keys(flags).length) {
    io.stderr.write(`mcp-authz: keys ${subcommand} takes no arguments\n`);
    return 2;
  }
  const now = Date.now();
  if (config.keys.file) return fileKeysCommand(subcommand, config.keys.file, io);
  if (subcommand === 'list') {
    const set = await readKeySet(store.settings);
    const rows = set.keys.map((k) => describeKey(k, now));
    io.stdout.write(`${['KID', 'ALG', 'STATE', 'CREATED', 'ACTIVE FROM', 'RETIRED AT'].join('\t')}\n`);
    for (const r of rows) io.stdout.write(`${[r.kid, r.alg, r.state, r.createdAt, r.activatesAt, r.retiredAt ?? '-'].join('\t')}\n`);
    return 0;
  }
  if (subcommand === 'rotate') {
    const timing = keyTiming(config);
    const { added, retiring } = await rotateKeys(store.settings, timing, now);
    io.audit?.record({
      event: 'key.rotated',
      outcome: 'success',
      actor: cliActor(),
      details: { added: added.map((k) => k.jwk.kid), retiring: retiring.map((k) => k.jwk.kid) },
    });
    for (const k of added) io.stdout.write(`added ${k.jwk.kid} (${k.jwk.alg}), signing from ${new Date(k.activatesAt).toISOString()}\n`);
    for (const k of retiring) {
      io.stdout.write(`retiring ${k.jwk.kid} (${k.jwk.alg}) at ${new Date(k.retiredAt!).toISOString()}; published until ${new Date(k.retiredAt! + timing.retentionMs).toISOString()}\n`);
    }
    return 0;
  }
  io.stderr.write(`mcp-authz: unknown keys subcommand "${subcommand}" (list, rotate)\n`);
  return 2;
}

function fileKeysCommand(subcommand: string | undefined, path: string, io: CommandIO): number {
  if (subcommand === 'list') {
    const { keys } = readSigningKeysFile(path);
    io.stdout.write(`${['KID', 'ALG', 'STATE'].join('\t')}\n`);
    for (const k of keys) io.stdout.write(`${[k.kid, k.alg, k.key_ops ? 'published' : 'signing'].join('\t')}\n`);
    return 0;
  }
  if (subcommand === 'rotate') {
    io.stderr.write(`mcp-authz: the signing keys come from ${SIGNING_KEYS_SETTING_NAME}; rotate them by editing that file (docs/deployment.md)\n`);
    return 2;
  }
  io.stderr.write(`mcp-authz: unknown keys subcommand "${subcommand}" (list, rotate)\n`);
  return 2;
}
