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
import { hash } from 'node:crypto';
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
  // one-shot: a third of the time of a Hash object for a record-sized input
  return hash('sha256', text, 'hex');
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
  return `{${members(value as Record<string, unknown>)}}`;
}

/**
 * The shapes of the objects serialised so far: an object's own keys (in its own order) → its keys
 * in sorted order, each with its `"key":` prefix. Records of one event are built alike, so the
 * writer sorts and quotes the keys of each kind of record once rather than for every record.
 */
const shapes = new Map<string, readonly (readonly [key: string, prefix: string])[]>();
/** a bound on the shapes kept: records come in a few dozen kinds, each with a few optional fields */
const MAX_SHAPES = 512;

function sortedKeys(object: Record<string, unknown>): readonly (readonly [string, string])[] {
  const keys = Object.keys(object);
  // the keys joined by NUL name the shape; a key with a NUL in it could make two shapes alike
  let plain = true;
  for (const key of keys) if (key.includes('\0')) plain = false;
  const id = plain ? keys.join('\0') : undefined;
  const known = id === undefined ? undefined : shapes.get(id);
  if (known) return known;
  const sorted = keys.sort().map((key) => [key, `${JSON.stringify(key)}:`] as const);
  if (id !== undefined && shapes.size < MAX_SHAPES) shapes.set(id, sorted);
  return sorted;
}

/** An object's canonical members, `"key":value` in key order joined by commas, `undefined` ones left out. */
function members(object: Record<string, unknown>): string {
  let out = '';
  for (const [key, prefix] of sortedKeys(object)) {
    const value = object[key];
    if (value !== undefined) out += (out ? ',' : '') + prefix + canonicalJson(value);
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
  // the members that sort before `hash` and those after it: `"hash":` goes between them
  let head = '';
  let tail = '';
  for (const [key, prefix] of sortedKeys(body)) {
    const value = body[key];
    if (key === 'hash' || value === undefined) continue;
    const part = prefix + canonicalJson(value);
    if (key < 'hash') head += (head ? ',' : '') + part;
    else tail += (tail ? ',' : '') + part;
  }
  const hash = sha256Hex(`${String(body.prev)}\n{${head}${head && tail ? ',' : ''}${tail}}`);
  return { hash, line: `{${head}${head ? ',' : ''}"hash":${JSON.stringify(hash)}${tail ? ',' : ''}${tail}}` };
}

/** A record's members but `hash`, as the writer hands them to {@link sealAuditRecord}. */
export type UnsealedRecord = Omit<AuditRecord, 'hash'>;

/**
 * Every member a record may have (the schema is strict) but `hash`, in canonical order, each with
 * its `"key":` prefix, split where `hash` goes: the writer's records need no sorting of their own.
 */
const [MEMBERS_BEFORE_HASH, MEMBERS_AFTER_HASH] = ((): [readonly (readonly [keyof UnsealedRecord, string])[], readonly (readonly [keyof UnsealedRecord, string])[]] => {
  const keys = (Object.keys(auditRecordSchema.shape) as (keyof AuditRecord)[]).sort();
  const member = (key: keyof AuditRecord) => [key as keyof UnsealedRecord, `${JSON.stringify(key)}:`] as const;
  return [keys.filter((key) => key < 'hash').map(member), keys.filter((key) => key > 'hash').map(member)];
})();

/** The canonical members of `body` among `members`, joined by commas (undefined ones left out). */
function knownMembers(body: UnsealedRecord, members: readonly (readonly [keyof UnsealedRecord, string])[]): string {
  let out = '';
  for (const [key, prefix] of members) {
    const value = body[key];
    if (value !== undefined) out += (out ? ',' : '') + prefix + (typeof value === 'string' ? JSON.stringify(value) : canonicalJson(value));
  }
  return out;
}

/**
 * {@link sealRecord} for the writer's own records, which hold only the record's members (the
 * schema's: an event that passed it, and the chain's fields): the same hash and line, with the
 * members taken in the order known beforehand instead of sorted per record. Only `details` is
 * an object, and it is canonicalised as any other value.
 */
export function sealAuditRecord(body: UnsealedRecord): { hash: string; line: string } {
  const head = knownMembers(body, MEMBERS_BEFORE_HASH);
  const tail = knownMembers(body, MEMBERS_AFTER_HASH);
  const hash = sha256Hex(`${body.prev}\n{${head}${head && tail ? ',' : ''}${tail}}`);
  return { hash, line: `{${head}${head ? ',' : ''}"hash":${JSON.stringify(hash)}${tail ? ',' : ''}${tail}}` };
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
