/**
 * The client directory over the `clients` table (migration 3).
 *
 * Expiry is enforced on every read (`expires_at > now`), so an expired row is never
 * returned (nor counted by `remove`) even before the sweeper deletes it.
 */
import type Database from 'better-sqlite3';
import { StoreError, type ClientDirectory, type ClientKind, type ClientRecord } from '../contract.js';

interface ClientRow {
  client_id: string;
  kind: string;
  name: string | null;
  created_at: number;
  last_used_at: number | null;
}

const COLUMNS = 'client_id, kind, name, created_at, last_used_at';
const LIVE = '(expires_at IS NULL OR expires_at > ?)';
const KINDS: ReadonlySet<string> = new Set<ClientKind>(['static', 'cimd', 'dcr']);

function toRecord(row: ClientRow): ClientRecord {
  if (!KINDS.has(row.kind)) throw new StoreError(`the stored client "${row.client_id}" has an unknown kind`);
  return {
    clientId: row.client_id,
    kind: row.kind as ClientKind,
    ...(row.name === null ? {} : { name: row.name }),
    createdAt: row.created_at,
    ...(row.last_used_at === null ? {} : { lastUsedAt: row.last_used_at }),
  };
}

export class SqliteClientDirectory implements ClientDirectory {
  readonly #put: Database.Statement<[Record<string, string | number | null>]>;
  readonly #get: Database.Statement<[string, number], ClientRow>;
  readonly #all: Database.Statement<[number], ClientRow>;
  readonly #remove: Database.Statement<[string, number]>;
  readonly #sweep: Database.Statement<[number]>;

  constructor(db: Database.Database) {
    this.#put = db.prepare(`INSERT OR REPLACE INTO clients (${COLUMNS}, expires_at)
      VALUES (@clientId, @kind, @name, @createdAt, @lastUsedAt, @expiresAt)`);
    this.#get = db.prepare(`SELECT ${COLUMNS} FROM clients WHERE client_id = ? AND ${LIVE}`);
    this.#all = db.prepare(`SELECT ${COLUMNS} FROM clients WHERE ${LIVE} ORDER BY client_id`);
    this.#remove = db.prepare(`DELETE FROM clients WHERE client_id = ? AND ${LIVE}`);
    this.#sweep = db.prepare('DELETE FROM clients WHERE expires_at IS NOT NULL AND expires_at <= ?');
  }

  async put(record: ClientRecord, expiresAt?: number): Promise<void> {
    this.#put.run({
      clientId: record.clientId,
      kind: record.kind,
      name: record.name ?? null,
      createdAt: record.createdAt,
      lastUsedAt: record.lastUsedAt ?? null,
      expiresAt: expiresAt ?? null,
    });
  }

  async get(clientId: string): Promise<ClientRecord | undefined> {
    const row = this.#get.get(clientId, Date.now());
    return row && toRecord(row);
  }

  async list(): Promise<ClientRecord[]> {
    return this.#all.all(Date.now()).map(toRecord);
  }

  async remove(clientId: string): Promise<boolean> {
    return this.#remove.run(clientId, Date.now()).changes === 1;
  }

  /** Deletes expired records; returns how many (the sweeper's entry point). */
  sweepNow(now: number = Date.now()): number {
    return this.#sweep.run(now).changes;
  }
}
