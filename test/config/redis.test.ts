/**
 * The Redis settings: one server, Sentinel or Cluster, chosen by configuration (file or
 * environment), exactly one of them; the password given once, possibly as a mounted file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { redisConnection, storeOptions } from '../../src/config/redis.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-redis-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const PASSWORD = 's3cret-!@#-value';

/** Loads from the environment alone (the demo off: no clients to configure). */
function fromEnv(env: Record<string, string>) {
  return loadConfig({ env: { MCP_AUTHZ_DEMO: 'off', ...env } });
}

function refused(env: Record<string, string>, ...patterns: RegExp[]): string {
  let message = '';
  assert.throws(
    () => fromEnv(env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
      message = err.message;
      for (const pattern of patterns) assert.match(err.message, pattern);
      return true;
    },
  );
  return message;
}

test('no Redis setting: the SQLite store', () => {
  const config = fromEnv({});
  assert.equal(redisConnection(config), undefined);
  assert.deepEqual(storeOptions(config), { dataDir: config.dataDir, redis: undefined, redisKeyPrefix: 'mcp-authz:' });
});

test('REDIS_URL: one server, as before', () => {
  assert.deepEqual(redisConnection(fromEnv({ REDIS_URL: 'redis://cache:6379/0' })), { mode: 'standalone', url: 'redis://cache:6379/0' });
  assert.deepEqual(redisConnection(fromEnv({ REDIS_URL: 'rediss://cache:6380', REDIS_PASSWORD: PASSWORD })), {
    mode: 'standalone',
    url: 'rediss://cache:6380',
    password: PASSWORD,
  });
});

test('REDIS_SENTINELS + REDIS_SENTINEL_NAME: the master through Sentinel (IPv6 in brackets, spaces ignored)', () => {
  const config = fromEnv({ REDIS_SENTINELS: 'sentinel-0.sentinel:26379, [::1]:26380,10.0.0.3:26381', REDIS_SENTINEL_NAME: 'mymaster', REDIS_TLS: 'true' });
  assert.deepEqual(config.redisSentinels, ['sentinel-0.sentinel:26379', '[::1]:26380', '10.0.0.3:26381']);
  assert.deepEqual(redisConnection(config), {
    mode: 'sentinel',
    sentinels: [
      { host: 'sentinel-0.sentinel', port: 26379 },
      { host: '::1', port: 26380 },
      { host: '10.0.0.3', port: 26381 },
    ],
    name: 'mymaster',
    tls: true,
  });
});

test('REDIS_CLUSTER_NODES: a Cluster from its seed nodes', () => {
  assert.deepEqual(redisConnection(fromEnv({ REDIS_CLUSTER_NODES: 'redis-0:6379,redis-1:6379', REDIS_PASSWORD: PASSWORD })), {
    mode: 'cluster',
    nodes: [
      { host: 'redis-0', port: 6379 },
      { host: 'redis-1', port: 6379 },
    ],
    password: PASSWORD,
  });
});

test('the same settings from the config file', () => {
  const path = join(dir, 'cluster.yaml');
  writeFileSync(path, 'redisClusterNodes: ["127.0.0.1:7000", "127.0.0.1:7001"]\nredisTls: true\n');
  const config = loadConfig({ configPath: path, env: {} });
  assert.deepEqual(redisConnection(config), {
    mode: 'cluster',
    nodes: [
      { host: '127.0.0.1', port: 7000 },
      { host: '127.0.0.1', port: 7001 },
    ],
    tls: true,
  });
});

test('two ways to reach Redis at once: refused, naming both', () => {
  refused({ REDIS_URL: 'redis://cache', REDIS_CLUSTER_NODES: 'redis-0:6379' }, /redisClusterNodes: choose one way to reach Redis: redisUrl and redisClusterNodes are both set/);
  refused(
    { REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER_NODES: 'redis-0:6379' },
    /redisClusterNodes: choose one way to reach Redis: redisSentinels and redisClusterNodes are both set/,
  );
});

test('Sentinel settings that do not go together: refused, naming the field', () => {
  refused({ REDIS_SENTINELS: 's:26379' }, /redisSentinelName: required with redisSentinels/);
  refused({ REDIS_URL: 'redis://cache', REDIS_SENTINEL_NAME: 'm' }, /redisSentinelName: only with redisSentinels/);
  refused({ REDIS_SENTINELS: 's', REDIS_SENTINEL_NAME: 'm' }, /redisSentinels\[0\]: a host:port such as redis-0\.redis:6379/);
  refused({ REDIS_CLUSTER_NODES: 'redis-0:0' }, /redisClusterNodes\[0\]: the port must be from 1 to 65535/);
  refused({ REDIS_CLUSTER_NODES: ' , ' }, /redisClusterNodes: Too small/);
});

test('a password, TLS or password file without Redis: refused, naming the field', () => {
  refused({ REDIS_PASSWORD: PASSWORD }, /redisPassword: set without Redis/);
  refused({ REDIS_TLS: '1' }, /redisTls: set without Redis/);
  refused({ REDIS_TLS: 'maybe', REDIS_URL: 'redis://cache' }, /redisTls: Invalid input: expected boolean/);
});

test('the password given twice: refused, and the message never holds it', () => {
  const twice = refused({ REDIS_URL: `redis://:${encodeURIComponent(PASSWORD)}@cache`, REDIS_PASSWORD: 'other-one' }, /redisPassword: give the Redis password once: redisUrl holds one too/);
  assert.ok(!twice.includes('other-one'));
  const file = join(dir, 'twice');
  writeFileSync(file, PASSWORD);
  const both = refused({ REDIS_URL: 'redis://cache', REDIS_PASSWORD: 'other-one', REDIS_PASSWORD_FILE: file }, /redisPasswordFile: give the Redis password once/);
  assert.ok(!both.includes('other-one') && !both.includes(PASSWORD));
});

test('REDIS_PASSWORD_FILE: the file\'s text without its trailing newline', () => {
  const file = join(dir, 'redis-password');
  writeFileSync(file, `${PASSWORD}\n`);
  const config = fromEnv({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm', REDIS_PASSWORD_FILE: file });
  assert.equal(config.redisPassword, PASSWORD);
  assert.equal(redisConnection(config)?.password, PASSWORD);
  writeFileSync(file, `${PASSWORD}\r\n`);
  assert.equal(fromEnv({ REDIS_URL: 'redis://cache', REDIS_PASSWORD_FILE: file }).redisPassword, PASSWORD, 'a CRLF too');
  writeFileSync(file, ` ${PASSWORD} `);
  assert.equal(fromEnv({ REDIS_URL: 'redis://cache', REDIS_PASSWORD_FILE: file }).redisPassword, ` ${PASSWORD} `, 'other whitespace is part of the password');
});

test('REDIS_PASSWORD_FILE missing, unreadable or empty: a ConfigError naming the variable and the path, never the content', () => {
  const missing = join(dir, 'no-such-file');
  refused({ REDIS_URL: 'redis://cache', REDIS_PASSWORD_FILE: missing }, /redisPasswordFile \(env REDIS_PASSWORD_FILE\): cannot read .*no-such-file \(ENOENT\)/);
  refused({ REDIS_URL: 'redis://cache', REDIS_PASSWORD_FILE: dir }, /REDIS_PASSWORD_FILE\): cannot read .* \(EISDIR\)/);
  const empty = join(dir, 'empty');
  writeFileSync(empty, '\n');
  refused({ REDIS_URL: 'redis://cache', REDIS_PASSWORD_FILE: empty }, /REDIS_PASSWORD_FILE\): .*empty is empty/);
  if (process.getuid?.() !== 0) {
    const locked = join(dir, 'locked');
    writeFileSync(locked, PASSWORD);
    chmodSync(locked, 0o000);
    const message = refused({ REDIS_URL: 'redis://cache', REDIS_PASSWORD_FILE: locked }, /REDIS_PASSWORD_FILE\): cannot read .*locked \(EACCES\)/);
    assert.ok(!message.includes(PASSWORD));
  }
});

test('a key prefix with a brace is refused: the store sets the hash tags', () => {
  const path = join(dir, 'prefix.yaml');
  writeFileSync(path, 'redisUrl: redis://cache\nredisKeyPrefix: "{tenant}:"\n');
  assert.throws(() => loadConfig({ configPath: path, env: {} }), /redisKeyPrefix: must not contain \{ or \}/);
});
