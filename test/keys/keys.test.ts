/**
 * Signing keys: created on first start and persisted; the same across restarts and across
 * replicas sharing a store; `keys rotate` adds a key and keeps the old one published until
 * its tokens have expired; an unreadable key set stops start-up with a clear error.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { SettingsStore, SettingRecord } from '../../adapters/contract.js';
import { openStore } from '../../adapters/index.js';
import {
  KeyStoreError,
  loadOrCreateKeySet,
  parseKeySet,
  providerJwks,
  rotateKeys,
  SIGNING_KEYS_SETTING,
  type KeyTiming,
} from '../../src/keys/signing-keys.js';
import { startServer } from '../helpers/server.js';
import { startRedis } from '../helpers/redis.js';
import { NOTES } from '../helpers/fixtures.js';
import { serviceToken } from '../helpers/flows.js';

class MemorySettings implements SettingsStore {
  readonly data = new Map<string, SettingRecord>();
  async get(name: string) {
    return this.data.get(name);
  }
  async create(name: string, value: string) {
    if (this.data.has(name)) return false;
    this.data.set(name, { value, version: 1 });
    return true;
  }
  async replace(name: string, expectedVersion: number, value: string) {
    const current = this.data.get(name);
    if (!current || current.version !== expectedVersion) return false;
    this.data.set(name, { value, version: current.version + 1 });
    return true;
  }
}

const timing: KeyTiming = { activationDelayMs: 60_000, retentionMs: 3_600_000 };

async function jwksKids(issuer: string): Promise<string[]> {
  const res = await fetch(`${issuer}/jwks`);
  const body = (await res.json()) as { keys: { kid: string; d?: string }[] };
  for (const k of body.keys) assert.equal(k.d, undefined, 'no private parts published');
  return body.keys.map((k) => k.kid).sort();
}


describe('key set rules', () => {
  it('creates one key set; concurrent first starts converge', async () => {
    const settings = new MemorySettings();
    const [a, b] = await Promise.all([loadOrCreateKeySet(settings, 1000), loadOrCreateKeySet(settings, 1000)]);
    assert.deepEqual(a.set, b.set);
    assert.equal([a.created, b.created].filter(Boolean).length, 1);
    assert.deepEqual(a.set.keys.map((k) => k.jwk.alg).sort(), ['ES256', 'RS256']);
  });

  it('rotation: the new key is published first and signs only after the activation delay', async () => {
    const settings = new MemorySettings();
    const t0 = 1_000_000;
    await loadOrCreateKeySet(settings, t0);
    const { added, retiring } = await rotateKeys(settings, timing, t0 + 1000);
    assert.equal(added.length, 2);
    assert.equal(retiring.length, 2);
    const set = parseKeySet(settings.data.get(SIGNING_KEYS_SETTING)!.value);

    const before = providerJwks(set, t0 + 2000, timing);
    const signing = (jwks: typeof before) => jwks.keys.filter((k) => !k.key_ops).map((k) => k.kid).sort();
    const old = retiring.map((k) => k.jwk.kid).sort();
    const fresh = added.map((k) => k.jwk.kid).sort();
    assert.deepEqual(signing(before), old, 'old keys still sign during the activation delay');
    assert.equal(before.keys.length, 4, 'new keys already published');

    const afterActivation = providerJwks(set, t0 + 1000 + timing.activationDelayMs + 1, timing);
    assert.deepEqual(signing(afterActivation), fresh, 'new keys sign after activation');
    assert.equal(afterActivation.keys.length, 4, 'old keys still published for verification');

    const afterRetention = providerJwks(set, t0 + 1000 + timing.activationDelayMs + timing.retentionMs + 1, timing);
    assert.deepEqual(afterRetention.keys.map((k) => k.kid).sort(), fresh, 'old keys dropped once their tokens expired');
  });

  it('an unreadable key set is an error, never a silent new key', () => {
    assert.throws(() => parseKeySet('not json'), KeyStoreError);
    assert.throws(() => parseKeySet('{"format":1,"keys":[]}'), /cannot be read/);
    assert.throws(() => parseKeySet('{"format":1,"keys":[{"jwk":{"kty":"EC","kid":"x","alg":"ES256","d":"AAAA"},"createdAt":1,"activatesAt":1}]}'), /not a usable private key/);
  });
});

describe('keys on SQLite: restart, CLI rotation, corruption', () => {
  let dataDir: string;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-keys-'));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps its keys across a restart; tokens from before verify after', async () => {
    const first = await startServer({ store: 'sqlite', dataDir });
    const kids = await jwksKids(first.issuer);
    const token = await serviceToken(first);
    await first.stop();

    const second = await startServer({ store: 'sqlite', dataDir });
    try {
      assert.deepEqual(await jwksKids(second.issuer), kids);
      const jwks = createRemoteJWKSet(new URL(`${second.issuer}/jwks`));
      const { payload } = await jwtVerify(token, jwks, { audience: NOTES, typ: 'at+jwt' });
      assert.equal(payload.client_id, 'nightly-report');
    } finally {
      await second.stop();
    }
  });

  it('`mcp-authz keys rotate` publishes a new key at once and signs with it after the delay', async () => {
    const t = await startServer({ store: 'sqlite', dataDir, config: { keys: { reloadInterval: 30, activationDelay: 0 } } });
    try {
      const before = await jwksKids(t.issuer);
      const oldToken = await serviceToken(t);
      // the CLI reads the same configuration as the servers (here: no activation delay)
      const configFile = join(dataDir, 'keys-test.yaml');
      writeFileSync(configFile, 'keys:\n  reloadInterval: 30\n  activationDelay: 0\n');
      const env = { ...process.env, DATA_DIR: dataDir, MCP_AUTHZ_CONFIG: configFile, REDIS_URL: '' };
      const run = spawnSync(process.execPath, ['dist/src/main.js', 'keys', 'rotate'], { env, encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /added .* \(ES256\)/);
      const list = spawnSync(process.execPath, ['dist/src/main.js', 'keys', 'list'], { env, encoding: 'utf8' });
      assert.equal(list.status, 0, list.stderr);
      assert.match(list.stdout, /retired/);

      await t.server.holder.refresh(); // what the reload timer does every keys.reloadInterval
      const afterKids = await jwksKids(t.issuer);
      assert.equal(afterKids.length, before.length + 2);
      for (const kid of before) assert.ok(afterKids.includes(kid), 'old key still published');
      const jwks = createRemoteJWKSet(new URL(`${t.issuer}/jwks`));
      await jwtVerify(oldToken, jwks, { audience: NOTES });
      const newToken = await serviceToken(t);
      const { protectedHeader } = await jwtVerify(newToken, jwks, { audience: NOTES });
      assert.ok(!before.includes(protectedHeader.kid!), 'new tokens are signed with the new key');
    } finally {
      await t.stop();
    }
  });

  it('refuses to start when the stored keys cannot be read', async () => {
    const store = await openStore({ dataDir, redisKeyPrefix: 'x:' });
    const current = (await store.settings.get(SIGNING_KEYS_SETTING))!;
    const corrupted = JSON.parse(current.value) as { keys: { jwk: { d: string } }[] };
    corrupted.keys[0]!.jwk.d = 'broken';
    assert.ok(await store.settings.replace(SIGNING_KEYS_SETTING, current.version, JSON.stringify(corrupted)));
    await store.close();

    const run = spawnSync(process.execPath, ['dist/src/main.js', 'serve'], {
      env: { ...process.env, DATA_DIR: dataDir, PORT: '0', ADMIN_PORT: '0', MCP_AUTHZ_CONFIG: '', REDIS_URL: '', LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /signing key .* not a usable private key/);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });
});

describe('keys on Redis: replicas share one key set', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  it('two replicas started at once publish the same keys and accept each other’s tokens', async () => {
    const prefix = 'replicas:';
    const [a, b] = await Promise.all([
      startServer({ store: 'redis', redisUrl: redis.url, redisKeyPrefix: prefix }),
      startServer({ store: 'redis', redisUrl: redis.url, redisKeyPrefix: prefix }),
    ]);
    try {
      assert.deepEqual(await jwksKids(a.issuer), await jwksKids(b.issuer));
      const token = await serviceToken(a);
      await jwtVerify(token, createRemoteJWKSet(new URL(`${b.issuer}/jwks`)), { audience: NOTES });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
