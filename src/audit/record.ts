/**
 * One audit record as written: the event (src/audit/events.ts) plus where it sits in its
 * hash chain. Shared by the writer (src/audit/log.ts) and the verifier (src/audit/verify.ts),
 * so both compute the hash the same way.
 *
 *   hash = hex sha256( prev + "\n" + canonical JSON of the record without `hash` )
 *
 * where canonical JSON sorts object keys recursively (arrays keep their order) and `prev` is
 * the hash of the chain's previous record, or for seq 1 the chain's genesis hash
 * sha256("mcp-authz audit genesis\0" + chain).
 *
 * A record is written as the canonical JSON of the whole record (`hash` included), in UTF-8,
 * and nothing else: one byte sequence per record, so a verifier can refuse any other (a
 * duplicate key, whitespace, an escape JSON.stringify would not write) that parses to the same
 * value but may read differently to another parser.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { auditEventSchema } from './events.js';

/** The record format version; every record carries it as `"audit": 1`, which also tells an audit line from an application log line. */
export const RECORD_FORMAT = 1;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/** A chain id: `<name>-<random>`, e.g. `web-7f9c-3b1e0a9d44c2`. */
export const chainIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/);

export const auditRecordSchema = z
  .object({
    ...auditEventSchema.shape,
    audit: z.literal(RECORD_FORMAT),
    /** when the event was recorded (ISO 8601, UTC) */
    time: z.iso.datetime(),
    chain: chainIdSchema,
    /** 1, 2, … within the chain */
    seq: z.number().int().min(1),
    /** how many records of this chain could not be written just before this one (write failures) */
    lost: z.number().int().min(1).optional(),
    prev: hex64,
    hash: hex64,
  })
  .strict();

export type AuditRecord = z.infer<typeof auditRecordSchema>;

/** The fields the chain checks need; a line without them cannot be placed in any chain. */
export const chainFieldsSchema = z.object({ chain: chainIdSchema, seq: z.number().int().min(1), prev: hex64, hash: hex64 });

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function genesisHash(chain: string): string {
  return sha256Hex(`mcp-authz audit genesis\0${chain}`);
}

/** JSON with object keys sorted recursively; `undefined` members are left out, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + (value[i] === undefined ? 'null' : canonicalJson(value[i]));
    return `${out}]`;
  }
  return `{${members(value as Record<string, unknown>)
    .map(([, part]) => part)
    .join(',')}}`;
}

/** An object's members as keys and canonical `"key":value` strings, in key order, `undefined` ones left out. */
function members(object: Record<string, unknown>): [string, string][] {
  const keys = Object.keys(object).sort();
  const out: [string, string][] = [];
  for (const key of keys) {
    const value = object[key];
    if (value !== undefined) out.push([key, `${JSON.stringify(key)}:${canonicalJson(value)}`]);
  }
  return out;
}

/** The hash a record must carry: over its `prev` and every other member but `hash`. */
export function recordHash(record: Record<string, unknown>): string {
  const { hash: _hash, ...rest } = record;
  return sha256Hex(`${String(rest.prev)}\n${canonicalJson(rest)}`);
}

/** The one byte form of a record (`hash` included), without the line's newline. */
export function serializeRecord(record: Record<string, unknown>): string {
  return canonicalJson(record);
}

/**
 * A new record's hash and line at once: {@link recordHash} and {@link serializeRecord} of it,
 * with every member serialised once (the writer's hot path).
 */
export function sealRecord(body: Record<string, unknown>): { hash: string; line: string } {
  const { hash: _hash, ...rest } = body;
  const entries = members(rest);
  const parts = entries.map(([, part]) => part);
  const hash = sha256Hex(`${String(rest.prev)}\n{${parts.join(',')}}`);
  // `"hash":` goes where its key sorts among the others
  const at = entries.findIndex(([key]) => key > 'hash');
  parts.splice(at === -1 ? parts.length : at, 0, `"hash":${JSON.stringify(hash)}`);
  return { hash, line: `{${parts.join(',')}}` };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A line's bytes as text, or undefined when they are not UTF-8 (a BOM is kept, so it is seen). */
export function decodeLine(bytes: Uint8Array): string | undefined {
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}
