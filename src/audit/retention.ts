/**
 * Retention of the file sink (`audit.retention`): rotated files older than `maxAge`, or beyond
 * `maxBytes` of rotated files in all, are deleted, oldest first, after a rotation. The current
 * file is never touched. Before a file is deleted, each chain's last record in it is recorded in
 * the store (`audit.pruned.<chain>`, src/audit/checkpoints.ts): verify then accepts that the
 * chain starts after it — and only there — so a file deleted by retention is a note, while any
 * other deletion is still found. Off unless configured: how long to keep audit records is the
 * operator's policy.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { SettingsStore } from '../../adapters/contract.js';
import type { Logger } from '../observability/logger.js';
import { recordPruned } from './checkpoints.js';
import { chainFieldsSchema } from './record.js';
import { ROTATED_FILE, rotatedAt } from './sinks.js';

export interface RetentionPolicy {
  /** seconds a rotated file is kept */
  maxAge?: number | undefined;
  /** bytes of rotated files kept in all (the newest) */
  maxBytes?: number | undefined;
}

interface Rotated {
  path: string;
  rotatedAt: number;
  size: number;
}

/** The rotated files retention would delete now, oldest first. */
export async function filesToPrune(dir: string, policy: RetentionPolicy, now = Date.now()): Promise<Rotated[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((name) => ROTATED_FILE.test(name));
  const files: Rotated[] = [];
  for (const name of names) {
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info) files.push({ path: join(dir, name), rotatedAt: rotatedAt(name), size: info.size });
  }
  files.sort((a, b) => a.rotatedAt - b.rotatedAt || (a.path < b.path ? -1 : 1));
  let total = files.reduce((sum, f) => sum + f.size, 0);
  const doomed: Rotated[] = [];
  for (const file of files) {
    const tooOld = policy.maxAge !== undefined && now - file.rotatedAt > policy.maxAge * 1000;
    const tooMuch = policy.maxBytes !== undefined && total > policy.maxBytes;
    if (!tooOld && !tooMuch) break;
    doomed.push(file);
    total -= file.size;
  }
  return doomed;
}

/** Each chain's last record in a file: seq and hash. */
async function lastRecords(path: string): Promise<Map<string, { seq: number; hash: string }>> {
  const last = new Map<string, { seq: number; hash: string }>();
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) {
    let fields;
    try {
      fields = chainFieldsSchema.safeParse(JSON.parse(line));
    } catch {
      continue;
    }
    if (!fields.success) continue;
    const { chain, seq, hash } = fields.data;
    if ((last.get(chain)?.seq ?? 0) < seq) last.set(chain, { seq, hash });
  }
  return last;
}

/** Deletes what the policy says must go; returns the files deleted. Errors are logged, never thrown. */
export async function pruneAuditFiles(dir: string, policy: RetentionPolicy, settings: SettingsStore, log: Logger): Promise<string[]> {
  const deleted: string[] = [];
  try {
    for (const file of await filesToPrune(dir, policy)) {
      const time = new Date().toISOString();
      for (const [chain, { seq, hash }] of await lastRecords(file.path)) await recordPruned(settings, chain, { seq, hash, time });
      await unlink(file.path).catch((err: NodeJS.ErrnoException) => {
        // another process pruned it first
        if (err.code !== 'ENOENT') throw err;
      });
      deleted.push(file.path);
    }
    if (deleted.length) log.info({ event: 'audit.pruned', files: deleted.length }, 'audit files deleted by retention');
  } catch (err) {
    log.error({ event: 'audit.prune_failed', err: { message: (err as Error).message } }, 'could not apply the audit retention');
  }
  return deleted;
}
