/** Local user accounts over the `accounts` table (the unique username enforces create). */
import type Database from 'better-sqlite3';
import { AccountExistsError, StoreError, type AccountPatch, type AccountRecord, type AccountStore } from '../contract.js';

interface AccountRow {
  id: string;
  username: string;
  password_hash: string;
  roles: string;
  created_at: number;
  updated_at: number;
  connection: string | null;
  display_name: string | null;
  email: string | null;
  second_factors: string | null;
}

const COLUMNS = 'id, username, password_hash, roles, created_at, updated_at, connection, display_name, email, second_factors';

/** Optional text columns: NULL or '' is absent. */
function optional<K extends string>(key: K, value: string | null): { [P in K]?: string } {
  return (value ? { [key]: value } : {}) as { [P in K]?: string };
}

function toRecord(row: AccountRow): AccountRecord {
  let roles: unknown;
  try {
    roles = JSON.parse(row.roles);
  } catch {
    roles = undefined;
  }
  if (!Array.isArray(roles) || !roles.every((role) => typeof role === 'string')) {
    throw new StoreError(`the stored roles of account "${row.username}" cannot be read`);
  }
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    roles,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...optional('connection', row.connection),
    ...optional('displayName', row.display_name),
    ...optional('email', row.email),
    ...optional('secondFactors', row.second_factors),
  };
}

function isUsernameConflict(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE' &&
    err.message.includes('accounts.username')
  );
}

export class SqliteAccountStore implements AccountStore {
  readonly #insert: Database.Statement<[AccountRow]>;
  readonly #byUsername: Database.Statement<[string], AccountRow>;
  readonly #byId: Database.Statement<[string], AccountRow>;
  readonly #all: Database.Statement<[], AccountRow>;
  readonly #update: Database.Statement<[string | null, string | null, string | null, string | null, string | null, number, string]>;
  readonly #remove: Database.Statement<[string]>;

  constructor(db: Database.Database) {
    this.#insert = db.prepare(`INSERT INTO accounts (${COLUMNS})
      VALUES (@id, @username, @password_hash, @roles, @created_at, @updated_at, @connection, @display_name, @email, @second_factors)`);
    this.#byUsername = db.prepare(`SELECT ${COLUMNS} FROM accounts WHERE username = ?`);
    this.#byId = db.prepare(`SELECT ${COLUMNS} FROM accounts WHERE id = ?`);
    this.#all = db.prepare(`SELECT ${COLUMNS} FROM accounts ORDER BY username`);
    this.#update = db.prepare(`UPDATE accounts SET
      password_hash = COALESCE(?, password_hash), roles = COALESCE(?, roles),
      display_name = COALESCE(?, display_name), email = COALESCE(?, email),
      second_factors = COALESCE(?, second_factors), updated_at = ?
      WHERE username = ?`);
    this.#remove = db.prepare('DELETE FROM accounts WHERE username = ?');
  }

  async create(record: AccountRecord): Promise<void> {
    try {
      this.#insert.run({
        id: record.id,
        username: record.username,
        password_hash: record.passwordHash,
        roles: JSON.stringify(record.roles),
        created_at: record.createdAt,
        updated_at: record.updatedAt,
        connection: record.connection || null,
        display_name: record.displayName || null,
        email: record.email || null,
        second_factors: record.secondFactors || null,
      });
    } catch (err) {
      if (isUsernameConflict(err)) throw new AccountExistsError(record.username);
      throw err;
    }
  }

  async findByUsername(username: string): Promise<AccountRecord | undefined> {
    const row = this.#byUsername.get(username);
    return row && toRecord(row);
  }

  async findById(id: string): Promise<AccountRecord | undefined> {
    const row = this.#byId.get(id);
    return row && toRecord(row);
  }

  async list(): Promise<AccountRecord[]> {
    return this.#all.all().map(toRecord);
  }

  async update(username: string, patch: AccountPatch): Promise<boolean> {
    const roles = patch.roles === undefined ? null : JSON.stringify(patch.roles);
    // '' is stored as given (it clears the field: read back as absent); undefined keeps the value
    const { passwordHash, displayName, email, secondFactors } = patch;
    return this.#update.run(passwordHash ?? null, roles, displayName ?? null, email ?? null, secondFactors ?? null, Date.now(), username).changes === 1;
  }

  async remove(username: string): Promise<boolean> {
    return this.#remove.run(username).changes === 1;
  }
}
