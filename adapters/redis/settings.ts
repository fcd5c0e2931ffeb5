/**
 * Named, versioned settings in Redis: a hash { value, version } per name, no TTL.
 * Create-if-absent and compare-and-swap are Lua scripts, so replicas racing to
 * initialise or rotate a setting converge on one winner.
 */
import { StoreError, type SettingRecord, type SettingsStore } from '../contract.js';
import type { RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import type { RedisScripts } from './scripts.js';

export class RedisSettingsStore implements SettingsStore {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts;

  constructor(redis: RedisClient, keys: RedisKeys, scripts: RedisScripts) {
    this.#redis = redis;
    this.#keys = keys;
    this.#scripts = scripts;
  }

  async get(name: string): Promise<SettingRecord | undefined> {
    const [value, version] = await this.#redis.hmget(this.#keys.setting(name), 'value', 'version');
    if (value === null || value === undefined) return undefined;
    const parsed = Number(version);
    if (!Number.isInteger(parsed) || parsed < 1) throw new StoreError(`the stored setting "${name}" has no valid version`);
    return { value, version: parsed };
  }

  async create(name: string, value: string): Promise<boolean> {
    return (await this.#scripts.settingCreate(this.#keys.setting(name), value)) === 1;
  }

  async replace(name: string, expectedVersion: number, value: string): Promise<boolean> {
    return (await this.#scripts.settingReplace(this.#keys.setting(name), expectedVersion, value)) === 1;
  }
}
