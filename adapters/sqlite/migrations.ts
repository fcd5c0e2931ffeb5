/**
 * The SQLite schema, as numbered migrations.
 *
 * A migration is immutable once released: databases in the field have already run it,
 * so a change is always a new, higher-numbered entry. `applyMigrations` runs the missing
 * ones in one IMMEDIATE transaction (so two processes opening the same fresh file cannot
 * both migrate) and records each in `schema_migrations`.
 */
import type Database from 'better-sqlite3';
import { StoreError } from '../contract.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      -- One table for every oidc-provider model. id_hash is sha256(id): the id itself is
      -- a bearer value for most models and is never stored in the clear here.
      -- expires_at is epoch milliseconds (NULL: never expires); consumed_at epoch seconds.
      CREATE TABLE oidc_models (
        model          TEXT    NOT NULL,
        id_hash        TEXT    NOT NULL,
        payload        TEXT    NOT NULL,
        grant_id       TEXT,
        user_code_hash TEXT,
        uid            TEXT,
        expires_at     INTEGER,
        consumed_at    INTEGER,
        PRIMARY KEY (model, id_hash)
      ) WITHOUT ROWID;
      CREATE INDEX oidc_models_grant ON oidc_models (model, grant_id) WHERE grant_id IS NOT NULL;
      CREATE INDEX oidc_models_user_code ON oidc_models (model, user_code_hash) WHERE user_code_hash IS NOT NULL;
      CREATE INDEX oidc_models_uid ON oidc_models (model, uid) WHERE uid IS NOT NULL;
      CREATE INDEX oidc_models_expires ON oidc_models (expires_at) WHERE expires_at IS NOT NULL;

      CREATE TABLE accounts (
        id            TEXT    NOT NULL PRIMARY KEY,
        username      TEXT    NOT NULL UNIQUE,
        password_hash TEXT    NOT NULL,
        roles         TEXT    NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      );

      CREATE TABLE settings (
        name    TEXT    NOT NULL PRIMARY KEY,
        value   TEXT    NOT NULL,
        version INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'revocation log',
    sql: `
      -- The shared revocation log (adapters/sqlite/revocations.ts). AUTOINCREMENT, not a
      -- plain rowid: ids must never be reused after the newest rows are pruned, or a
      -- reader resuming after an id would miss what was appended since.
      -- event is the event JSON (identifiers only: jti, grantId, sub; never token values);
      -- until is the event's until (epoch seconds), copied out for reads and pruning.
      CREATE TABLE revocations (
        id    INTEGER PRIMARY KEY AUTOINCREMENT,
        event TEXT    NOT NULL,
        until INTEGER NOT NULL
      );
      CREATE INDEX revocations_until ON revocations (until);
    `,
  },
  {
    version: 3,
    name: 'client directory and refresh rotations',
    sql: `
      -- The directory of known clients (adapters/sqlite/clients.ts). client_id is not a
      -- secret; expires_at is epoch milliseconds (NULL: kept until removed).
      CREATE TABLE clients (
        client_id    TEXT    NOT NULL PRIMARY KEY,
        kind         TEXT    NOT NULL,
        name         TEXT,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER,
        expires_at   INTEGER
      );
      CREATE INDEX clients_expires ON clients (expires_at) WHERE expires_at IS NOT NULL;

      -- Refresh token rotations in progress or recently answered
      -- (adapters/sqlite/rotations.ts). key is the caller's hash of the token, never the
      -- token; outcome is NULL while claimed, the caller's sealed answer once settled;
      -- expires_at is epoch milliseconds.
      CREATE TABLE refresh_rotations (
        key        TEXT    NOT NULL PRIMARY KEY,
        outcome    TEXT,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX refresh_rotations_expires ON refresh_rotations (expires_at);
    `,
  },
  {
    version: 4,
    name: 'grant directory',
    sql: `
      -- The directory of grants (adapters/sqlite/grants.ts): who allowed which client, when,
      -- and its last use. Identifiers only (grant ids are not credentials). Times are epoch
      -- milliseconds; every row expires with its Grant.
      CREATE TABLE grants (
        grant_id     TEXT    NOT NULL PRIMARY KEY,
        account_id   TEXT    NOT NULL,
        client_id    TEXT    NOT NULL,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER,
        expires_at   INTEGER NOT NULL
      );
      CREATE INDEX grants_account ON grants (account_id, created_at);
      CREATE INDEX grants_client ON grants (client_id, created_at);
      CREATE INDEX grants_expires ON grants (expires_at);
    `,
  },
  {
    version: 5,
    name: 'accounts from sign-in connections, second factors',
    sql: `
      -- connection: the upstream connection that provisioned the account (NULL: local).
      -- second_factors: JSON owned by src/accounts/second-factors.ts (NULL: none).
      ALTER TABLE accounts ADD COLUMN connection     TEXT;
      ALTER TABLE accounts ADD COLUMN display_name   TEXT;
      ALTER TABLE accounts ADD COLUMN email          TEXT;
      ALTER TABLE accounts ADD COLUMN second_factors TEXT;
      CREATE INDEX accounts_connection ON accounts (connection) WHERE connection IS NOT NULL;
    `,
  },
  {
    version: 6,
    name: 'tool approvals',
    sql: `
      -- Per-call tool approvals (adapters/sqlite/tool-approvals.ts). Identifiers, the tool,
      -- the arguments digest and the summary the person is shown; never a token.
      -- lookup_key: the grant id, or client:<id> for a token without a person. approved is 1
      -- once the call was approved (it stays 1 when the record is redeemed or closed), for the
      -- once-per-session policy. Times are epoch milliseconds; keep_until = expires_at + a day,
      -- after which the row is ignored and swept.
      CREATE TABLE tool_approvals (
        id               TEXT    NOT NULL PRIMARY KEY,
        lookup_key       TEXT    NOT NULL,
        resource         TEXT    NOT NULL,
        tool             TEXT    NOT NULL,
        arguments_digest TEXT    NOT NULL,
        summary          TEXT    NOT NULL,
        client_id        TEXT    NOT NULL,
        grant_id         TEXT,
        account_id       TEXT,
        status           TEXT    NOT NULL,
        decided_by       TEXT,
        second_factor    INTEGER,
        approved         INTEGER NOT NULL DEFAULT 0,
        created_at       INTEGER NOT NULL,
        expires_at       INTEGER NOT NULL,
        decided_at       INTEGER,
        redeemed_at      INTEGER,
        keep_until       INTEGER NOT NULL
      );
      CREATE INDEX tool_approvals_open ON tool_approvals (lookup_key, resource, tool, arguments_digest, created_at);
      CREATE INDEX tool_approvals_pending ON tool_approvals (account_id, created_at) WHERE status = 'pending';
      CREATE INDEX tool_approvals_approved ON tool_approvals (grant_id, resource, tool) WHERE approved = 1;
      CREATE INDEX tool_approvals_keep ON tool_approvals (keep_until);
    `,
  },
];

/** Brings the schema up to date; returns the versions it applied. */
export function applyMigrations(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const migrate = db.transaction((): number[] => {
    const rows = db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[];
    const applied = new Set(rows.map((row) => row.version));
    const known = Math.max(0, ...migrations.map((m) => m.version));
    const newest = Math.max(0, ...applied);
    if (newest > known) {
      throw new StoreError(`the SQLite schema is at version ${newest}, newer than this build knows (${known}); upgrade mcp-authz`);
    }
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    const done: number[] = [];
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, Date.now());
      done.push(migration.version);
    }
    return done;
  });
  return migrate.immediate();
}
