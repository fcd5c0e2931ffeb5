/**
 * Named, versioned settings over the `settings` table. Both writes are single
 * conditional statements, so they stay correct when several processes share the file.
 */
import type Database from 'better-sqlite3';
import type { SettingRecord, SettingsStore } from '../contract.js';

export class SqliteSettingsStore implements SettingsStore {
  readonly #get: Database.Statement<[string], SettingRecord>;
  readonly #create: Database.Statement<[string, string]>;
  readonly #replace: Database.Statement<[string, string, number]>;

  constructor(db: Database.Database) {
    this.#get = db.prepare('SELECT value, version FROM settings WHERE name = ?');
    this.#create = db.prepare(
      'INSERT INTO settings (name, value, version) VALUES (?, ?, 1) ON CONFLICT (name) DO NOTHING',
    );
    this.#replace = db.prepare(
      'UPDATE settings SET value = ?, version = version + 1 WHERE name = ? AND version = ?',
    );
  }

  async get(name: string): Promise<SettingRecord | undefined> {
    const row = this.#get.get(name);
    return row && { value: row.value, version: row.version };
  }

  async create(name: string, value: string): Promise<boolean> {
    return this.#create.run(name, value).changes === 1;
  }

  async replace(name: string, expectedVersion: number, value: string): Promise<boolean> {
    return this.#replace.run(value, name, expectedVersion).changes === 1;
  }
}
