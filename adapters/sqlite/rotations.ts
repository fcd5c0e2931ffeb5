/**
 * Refresh token rotations over the `refresh_rotations` table (migration 3): one row per
 * token hash, `outcome` NULL while claimed, the sealed answer once settled.
 *
 * `claim` is one upsert that writes only when the key is absent or its row has expired,
 * so of concurrent callers (in this process or another one sharing the file) exactly
 * one sees `changes === 1`. Expiry is enforced on every read; the sweeper deletes
 * expired rows.
 */
import type Database from 'better-sqlite3';
import type { RefreshRotations } from '../contract.js';

interface RotationRow {
  outcome: string | null;
}

/** `ttlSeconds` as milliseconds: at least 1 ms, so a record is never born expired by rounding. */
function lifetimeMs(ttlSeconds: number): number {
  return Math.max(1, Math.round(ttlSeconds * 1000));
}

export class SqliteRefreshRotations implements RefreshRotations {
  readonly #claim: Database.Statement<[string, number, number]>;
  readonly #settle: Database.Statement<[string, string, number]>;
  readonly #get: Database.Statement<[string, number], RotationRow>;
  readonly #release: Database.Statement<[string]>;
  readonly #sweep: Database.Statement<[number]>;

  constructor(db: Database.Database) {
    this.#claim = db.prepare(`INSERT INTO refresh_rotations (key, outcome, expires_at) VALUES (?, NULL, ?)
      ON CONFLICT (key) DO UPDATE SET outcome = NULL, expires_at = excluded.expires_at
      WHERE refresh_rotations.expires_at <= ?`);
    this.#settle = db.prepare(`INSERT INTO refresh_rotations (key, outcome, expires_at) VALUES (?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET outcome = excluded.outcome, expires_at = excluded.expires_at`);
    this.#get = db.prepare('SELECT outcome FROM refresh_rotations WHERE key = ? AND expires_at > ?');
    this.#release = db.prepare('DELETE FROM refresh_rotations WHERE key = ? AND outcome IS NULL');
    this.#sweep = db.prepare('DELETE FROM refresh_rotations WHERE expires_at <= ?');
  }

  async claim(key: string, ttlSeconds: number): Promise<boolean> {
    const now = Date.now();
    return this.#claim.run(key, now + lifetimeMs(ttlSeconds), now).changes === 1;
  }

  async settle(key: string, outcome: string, ttlSeconds: number): Promise<void> {
    this.#settle.run(key, outcome, Date.now() + lifetimeMs(ttlSeconds));
  }

  async get(key: string): Promise<{ outcome?: string } | undefined> {
    const row = this.#get.get(key, Date.now());
    if (!row) return undefined;
    return row.outcome === null ? {} : { outcome: row.outcome };
  }

  async release(key: string): Promise<void> {
    this.#release.run(key);
  }

  /** Deletes expired rows; returns how many (the sweeper's entry point). */
  sweepNow(now: number = Date.now()): number {
    return this.#sweep.run(now).changes;
  }
}
