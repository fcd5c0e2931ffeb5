/**
 * oidc-provider's adapter for one model, over the `oidc_models` table.
 *
 * better-sqlite3 is synchronous; the methods stay async to honour the contract (and so
 * callers cannot come to depend on SQLite's synchronicity). Expiry is enforced on every
 * read (`expires_at > now`), so an expired row is never returned even before the
 * sweeper deletes it.
 */
import type Database from 'better-sqlite3';
import { AlreadyConsumedError, type AdapterPayload, type ModelAdapter } from '../contract.js';
import { sha256 } from '../hash.js';
import { decodePayload, encodePayload, epochSeconds, lifetimeMs } from '../payload.js';

interface StoredRow {
  payload: string;
  consumed_at: number | null;
}

/** Statements shared by every model adapter of one database (prepared once). */
export interface ModelStatements {
  upsert: Database.Statement<[Record<string, string | number | null>]>;
  find: Database.Statement<[string, string, number], StoredRow>;
  findByUid: Database.Statement<[string, string, number], StoredRow>;
  findByUserCode: Database.Statement<[string, string, number], StoredRow>;
  consume: Database.Statement<[number, string, string, number]>;
  exists: Database.Statement<[string, string, number], { found: number }>;
  destroy: Database.Statement<[string, string]>;
  revokeByGrantId: Database.Statement<[string, string]>;
  sweep: Database.Statement<[number]>;
}

const LIVE = '(expires_at IS NULL OR expires_at > ?)';

export function prepareModelStatements(db: Database.Database): ModelStatements {
  return {
    upsert: db.prepare(`INSERT OR REPLACE INTO oidc_models
      (model, id_hash, payload, grant_id, user_code_hash, uid, expires_at, consumed_at)
      VALUES (@model, @idHash, @payload, @grantId, @userCodeHash, @uid, @expiresAt, @consumedAt)`),
    find: db.prepare(`SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND id_hash = ? AND ${LIVE}`),
    findByUid: db.prepare(`SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND uid = ? AND ${LIVE} LIMIT 1`),
    findByUserCode: db.prepare(
      `SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND user_code_hash = ? AND ${LIVE} LIMIT 1`,
    ),
    consume: db.prepare(
      `UPDATE oidc_models SET consumed_at = ? WHERE model = ? AND id_hash = ? AND consumed_at IS NULL AND ${LIVE}`,
    ),
    exists: db.prepare(`SELECT 1 AS found FROM oidc_models WHERE model = ? AND id_hash = ? AND ${LIVE}`),
    destroy: db.prepare('DELETE FROM oidc_models WHERE model = ? AND id_hash = ?'),
    revokeByGrantId: db.prepare('DELETE FROM oidc_models WHERE model = ? AND grant_id = ?'),
    sweep: db.prepare('DELETE FROM oidc_models WHERE expires_at IS NOT NULL AND expires_at <= ?'),
  };
}

export class SqliteModelAdapter implements ModelAdapter {
  readonly #model: string;
  readonly #statements: ModelStatements;

  constructor(model: string, statements: ModelStatements) {
    this.#model = model;
    this.#statements = statements;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const now = Date.now();
    const lifetime = lifetimeMs(expiresIn);
    if (lifetime === 'expired') {
      this.#statements.destroy.run(this.#model, sha256(id));
      return;
    }
    const encoded = encodePayload(this.#model, payload);
    this.#statements.upsert.run({
      model: this.#model,
      idHash: sha256(id),
      payload: encoded.body,
      grantId: encoded.grantId ?? null,
      userCodeHash: encoded.userCode === undefined ? null : sha256(encoded.userCode),
      uid: encoded.uid ?? null,
      expiresAt: lifetime === 'none' ? null : now + lifetime,
      consumedAt: encoded.consumed ?? null,
    });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const row = this.#statements.find.get(this.#model, sha256(id), Date.now());
    return row && decodePayload(this.#model, row.payload, row.consumed_at, id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const row = this.#statements.findByUid.get(this.#model, uid, Date.now());
    return row && decodePayload(this.#model, row.payload, row.consumed_at, undefined);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const row = this.#statements.findByUserCode.get(this.#model, sha256(userCode), Date.now());
    return row && decodePayload(this.#model, row.payload, row.consumed_at, undefined);
  }

  /**
   * One conditional UPDATE is the atomic step: of concurrent callers (in this process or
   * another one sharing the file) exactly one sees `changes === 1`. When nothing changed,
   * the row either does not exist (no-op, like oidc-provider's own adapters) or was
   * already consumed.
   */
  async consume(id: string): Promise<void> {
    const now = Date.now();
    const idHash = sha256(id);
    const { changes } = this.#statements.consume.run(epochSeconds(now), this.#model, idHash, now);
    if (changes === 1) return;
    if (this.#statements.exists.get(this.#model, idHash, now)) throw new AlreadyConsumedError(this.#model);
  }

  async destroy(id: string): Promise<void> {
    this.#statements.destroy.run(this.#model, sha256(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    this.#statements.revokeByGrantId.run(this.#model, grantId);
  }
}
