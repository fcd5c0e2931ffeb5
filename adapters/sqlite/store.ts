/**
 * The SQLite store: one file in the data directory, for single-node deployments.
 *
 * WAL lets readers proceed while a write is in progress and lets a CLI process use the
 * file while the server runs; busy_timeout makes a writer wait for the other's lock
 * instead of failing at once; synchronous=NORMAL is durable across process crashes in
 * WAL mode (only an OS crash can lose the last transactions, which for short-lived
 * tokens is an acceptable trade for far fewer fsyncs).
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError, type ModelAdapter, type Store } from '../contract.js';
import { SqliteAccountStore } from './accounts.js';
import { SqliteClientDirectory } from './clients.js';
import { SqliteGrantDirectory } from './grants.js';
import { MemoryRateCounters } from './limits.js';
import { applyMigrations } from './migrations.js';
import { prepareModelStatements, SqliteModelAdapter, type ModelStatements } from './model-adapter.js';
import { SqliteRevocationLog } from './revocations.js';
import { SqliteRefreshRotations } from './rotations.js';
import { SqliteSettingsStore } from './settings.js';
import { SqliteToolApprovalStore } from './tool-approvals.js';

export const SQLITE_FILE_NAME = 'mcp-authz.sqlite';

/** How often expired rows (models, revocation entries, clients, grants, rotations, tool approvals) are deleted; reads ignore them in the meantime. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

export interface SqliteStoreOptions {
  dataDir: string;
  sweepIntervalMs?: number;
}

export interface SqliteStore extends Store {
  readonly kind: 'sqlite';
  /** the database file */
  readonly path: string;
  /** Deletes expired rows (models, revocation entries, clients, grants, rotations, tool approvals) now; returns how many. Also run by the sweep timer. */
  sweep(): number;
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message;
}

/** Creates the data directory (0700) and the database file (0600) when they are missing. */
function prepareFiles(dataDir: string, path: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'EEXIST') throw err;
  }
}

function openDatabase(path: string): Database.Database {
  const db = new Database(path, { fileMustExist: true });
  try {
    // busy_timeout first: switching a fresh file to WAL takes a lock another process may hold.
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    applyMigrations(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

class SqliteStoreImpl implements SqliteStore {
  readonly kind = 'sqlite' as const;
  readonly accounts: SqliteAccountStore;
  readonly settings: SqliteSettingsStore;
  readonly revocations: SqliteRevocationLog;
  readonly clients: SqliteClientDirectory;
  readonly rotations: SqliteRefreshRotations;
  readonly grants: SqliteGrantDirectory;
  readonly toolApprovals: SqliteToolApprovalStore;
  /** in this process's memory, not in the file (see ./limits.ts) */
  readonly limits = new MemoryRateCounters();
  readonly #db: Database.Database;
  readonly #statements: ModelStatements;
  readonly #models = new Map<string, SqliteModelAdapter>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly path: string,
    db: Database.Database,
    sweepIntervalMs: number,
  ) {
    this.#db = db;
    this.#statements = prepareModelStatements(db);
    this.accounts = new SqliteAccountStore(db);
    this.settings = new SqliteSettingsStore(db);
    this.revocations = new SqliteRevocationLog(db);
    this.clients = new SqliteClientDirectory(db);
    this.rotations = new SqliteRefreshRotations(db);
    this.grants = new SqliteGrantDirectory(db);
    this.toolApprovals = new SqliteToolApprovalStore(db);
    // A failed sweep (e.g. SQLITE_BUSY past busy_timeout) is retried at the next tick.
    this.#timer = setInterval(() => {
      try {
        this.sweep();
      } catch {
        /* retried next tick */
      }
    }, sweepIntervalMs);
    this.#timer.unref();
  }

  model(name: string): ModelAdapter {
    let adapter = this.#models.get(name);
    if (!adapter) {
      adapter = new SqliteModelAdapter(name, this.#statements);
      this.#models.set(name, adapter);
    }
    return adapter;
  }

  sweep(): number {
    const now = Date.now();
    const models = this.#statements.sweep.run(now).changes;
    const records = this.clients.sweepNow(now) + this.grants.sweepNow(now) + this.rotations.sweepNow(now) + this.toolApprovals.sweepNow(now);
    return models + records + this.revocations.pruneNow(Math.floor(now / 1000));
  }

  async ping(): Promise<void> {
    try {
      this.#db.prepare('SELECT 1').get();
    } catch (err) {
      throw new StoreError(`SQLite store at ${this.path} does not answer: ${errorText(err)}`);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.revocations.close();
    if (this.#db.open) this.#db.close();
  }
}

/**
 * Opens (creating and migrating when needed) `<dataDir>/mcp-authz.sqlite`.
 * Rejects with a StoreError naming the file and the cause.
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  const path = join(options.dataDir, SQLITE_FILE_NAME);
  let db: Database.Database;
  try {
    prepareFiles(options.dataDir, path);
    db = openDatabase(path);
  } catch (err) {
    throw new StoreError(`cannot open SQLite store at ${path}: ${errorText(err)}`, { cause: err });
  }
  return new SqliteStoreImpl(path, db, options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
}
