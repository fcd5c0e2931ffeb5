/**
 * Checkpoints: a chain's head (seq, hash, time) kept in the store, outside the records, so
 * that deleting a chain's newest records — or the whole chain — is detected by
 * `mcp-authz audit verify`.
 *
 * Stored in `store.settings`:
 * - `audit.checkpoint.<chain>`: JSON { seq, hash, time, closed? }, created after the chain's
 *   first record and replaced (compare-and-swap) every `audit.checkpointEvery` records and
 *   when the writer closes (`closed: true`: nothing may follow).
 * - `audit.chains`: JSON array of every chain id that has a checkpoint, so verify can find
 *   checkpoints whose records are gone. Appended with compare-and-swap; the checkpoint is
 *   always created before its chain is listed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { SettingsStore } from '../../adapters/contract.js';

export const CHAIN_INDEX = 'audit.chains';

export function checkpointName(chain: string): string {
  return `audit.checkpoint.${chain}`;
}

const checkpointSchema = z
  .object({
    seq: z.number().int().min(1),
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    time: z.string(),
    closed: z.boolean().optional(),
    /** where the chain's records go (see AuditSink.where) */
    where: z.string().optional(),
  })
  .strict();

export type Checkpoint = z.infer<typeof checkpointSchema>;

const indexSchema = z.array(z.string().min(1));

/** The setting `name` as JSON matching `schema`; undefined when absent or unreadable. */
async function readJsonSetting<T>(settings: SettingsStore, name: string, schema: z.ZodType<T>): Promise<T | undefined> {
  const record = await settings.get(name);
  if (!record) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(record.value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** undefined when absent or unreadable */
export function readCheckpoint(settings: SettingsStore, chain: string): Promise<Checkpoint | undefined> {
  return readJsonSetting(settings, checkpointName(chain), checkpointSchema);
}

export interface StoredCheckpoints {
  /** every chain in the index → its checkpoint (undefined: missing or unreadable) */
  checkpoints: Map<string, Checkpoint | undefined>;
  /** what is wrong with the index itself */
  problems: string[];
}

/** Every checkpoint the chain index names. */
export async function readCheckpoints(settings: SettingsStore): Promise<StoredCheckpoints> {
  const checkpoints = new Map<string, Checkpoint | undefined>();
  const record = await settings.get(CHAIN_INDEX);
  if (!record) return { checkpoints, problems: [] };
  const chains = parseIndex(record.value);
  if (!chains) return { checkpoints, problems: [`the store's audit chain index (${CHAIN_INDEX}) is unreadable`] };
  for (let i = 0; i < chains.length; i += 50) {
    const batch = chains.slice(i, i + 50);
    const read = await Promise.all(batch.map((chain) => readCheckpoint(settings, chain)));
    batch.forEach((chain, j) => checkpoints.set(chain, read[j]));
  }
  return { checkpoints, problems: [] };
}

function parseIndex(value: string): string[] | undefined {
  try {
    const parsed = indexSchema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Adds the chain to the index (compare-and-swap, retried on contention). Never rewrites an unreadable index. */
export async function registerChain(settings: SettingsStore, chain: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const current = await settings.get(CHAIN_INDEX);
    if (!current) {
      if (await settings.create(CHAIN_INDEX, JSON.stringify([chain]))) return;
    } else {
      const chains = parseIndex(current.value);
      if (!chains) throw new Error(`the store's audit chain index (${CHAIN_INDEX}) is unreadable; not rewriting it`);
      if (chains.includes(chain)) return;
      if (await settings.replace(CHAIN_INDEX, current.version, JSON.stringify([...chains, chain]))) return;
    }
    await sleep(Math.floor(Math.random() * 10 * (attempt + 1)));
  }
  throw new Error(`could not add chain ${chain} to the audit chain index (too many concurrent writers)`);
}

/**
 * What retention removed of a chain (src/audit/retention.ts): `audit.pruned.<chain>` = JSON
 * { seq, hash, time }, the chain's last removed record. Written before its file is deleted and
 * only ever moved forward, so verify knows the chain may start at seq + 1 (whose `prev` must be
 * `hash`) and tells a deletion by retention from any other.
 */
export function prunedName(chain: string): string {
  return `audit.pruned.${chain}`;
}

const prunedSchema = z.object({ seq: z.number().int().min(1), hash: z.string().regex(/^[0-9a-f]{64}$/), time: z.string() }).strict();

export type Pruned = z.infer<typeof prunedSchema>;

export function readPruned(settings: SettingsStore, chain: string): Promise<Pruned | undefined> {
  return readJsonSetting(settings, prunedName(chain), prunedSchema);
}

/** Records that a chain's records up to `pruned.seq` are removed (compare-and-swap; never moves back). */
export async function recordPruned(settings: SettingsStore, chain: string, pruned: Pruned): Promise<void> {
  const name = prunedName(chain);
  const value = JSON.stringify(pruned);
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = await settings.get(name);
    if (!current) {
      if (await settings.create(name, value)) return;
      continue;
    }
    const existing = prunedSchema.safeParse((() => {
      try {
        return JSON.parse(current.value) as unknown;
      } catch {
        return undefined;
      }
    })());
    if (existing.success && existing.data.seq >= pruned.seq) return;
    if (await settings.replace(name, current.version, value)) return;
    await sleep(Math.floor(Math.random() * 10 * (attempt + 1)));
  }
  throw new Error(`could not record what retention removed of audit chain ${chain}`);
}

/** Writes one chain's checkpoint; only this chain's writer ever writes it. */
export class CheckpointWriter {
  #version: number | undefined;

  constructor(
    private readonly settings: SettingsStore,
    private readonly chain: string,
  ) {}

  async write(checkpoint: Checkpoint): Promise<void> {
    const name = checkpointName(this.chain);
    const value = JSON.stringify(checkpoint);
    if (this.#version === undefined && (await this.settings.create(name, value))) {
      this.#version = 1;
      return;
    }
    if (this.#version !== undefined && (await this.settings.replace(name, this.#version, value))) {
      this.#version++;
      return;
    }
    // Not the version we wrote last (or it existed before us): the chain's own head is the truth.
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.settings.get(name);
      if (!current) {
        if (await this.settings.create(name, value)) {
          this.#version = 1;
          return;
        }
        continue;
      }
      if (await this.settings.replace(name, current.version, value)) {
        this.#version = current.version + 1;
        return;
      }
    }
    throw new Error(`could not write the checkpoint of audit chain ${this.chain}`);
  }
}
