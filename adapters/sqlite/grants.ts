/**
 * The grant directory over the `grants` table (migration 4).
 *
 * Expiry is enforced on every read (`expires_at > now`), so an expired row is never
 * returned, touched or counted by `remove` even before the sweeper deletes it.
 */
import type Database from 'better-sqlite3';
import type { GrantDirectory, GrantFilter, GrantRecord } from '../contract.js';

interface GrantRow {
  grant_id: string;
  account_id: string;
  client_id: string;
  created_at: number;
  last_used_at: number | null;
}

const COLUMNS = 'grant_id, account_id, client_id, created_at, last_used_at';
const ORDER = 'ORDER BY created_at DESC, grant_id';

function toRecord(row: GrantRow): GrantRecord {
  return {
    grantId: row.grant_id,
    accountId: row.account_id,
    clientId: row.client_id,
    createdAt: row.created_at,
    ...(row.last_used_at === null ? {} : { lastUsedAt: row.last_used_at }),
  };
}

export class SqliteGrantDirectory implements GrantDirectory {
  readonly #put: Database.Statement<[Record<string, string | number | null>]>;
  readonly #get: Database.Statement<[string, number], GrantRow>;
  readonly #list: Database.Statement<[{ now: number; accountId: string | null; clientId: string | null }], GrantRow>;
  readonly #touch: Database.Statement<[number, string, number, number]>;
  readonly #remove: Database.Statement<[string, number]>;
  readonly #sweep: Database.Statement<[number]>;

  constructor(db: Database.Database) {
    this.#put = db.prepare(`INSERT OR REPLACE INTO grants (${COLUMNS}, expires_at)
      VALUES (@grantId, @accountId, @clientId, @createdAt, @lastUsedAt, @expiresAt)`);
    this.#get = db.prepare(`SELECT ${COLUMNS} FROM grants WHERE grant_id = ? AND expires_at > ?`);
    // one statement for every filter; an absent filter field matches every row
    this.#list = db.prepare(`SELECT ${COLUMNS} FROM grants WHERE expires_at > @now
      AND (@accountId IS NULL OR account_id = @accountId) AND (@clientId IS NULL OR client_id = @clientId) ${ORDER}`);
    this.#touch = db.prepare(`UPDATE grants SET last_used_at = ?
      WHERE grant_id = ? AND expires_at > ? AND (last_used_at IS NULL OR last_used_at < ?)`);
    this.#remove = db.prepare('DELETE FROM grants WHERE grant_id = ? AND expires_at > ?');
    this.#sweep = db.prepare('DELETE FROM grants WHERE expires_at <= ?');
  }

  async put(record: GrantRecord, expiresAt: number): Promise<void> {
    this.#put.run({
      grantId: record.grantId,
      accountId: record.accountId,
      clientId: record.clientId,
      createdAt: record.createdAt,
      lastUsedAt: record.lastUsedAt ?? null,
      expiresAt: Math.ceil(expiresAt),
    });
  }

  async get(grantId: string): Promise<GrantRecord | undefined> {
    const row = this.#get.get(grantId, Date.now());
    return row && toRecord(row);
  }

  async list(filter: GrantFilter = {}): Promise<GrantRecord[]> {
    return this.#list.all({ now: Date.now(), accountId: filter.accountId ?? null, clientId: filter.clientId ?? null }).map(toRecord);
  }

  async touch(grantId: string, at: number): Promise<void> {
    this.#touch.run(at, grantId, Date.now(), at);
  }

  async remove(grantId: string): Promise<boolean> {
    return this.#remove.run(grantId, Date.now()).changes === 1;
  }

  /** Deletes expired records; returns how many (the sweeper's entry point). */
  sweepNow(now: number = Date.now()): number {
    return this.#sweep.run(now).changes;
  }
}
