/**
 * The storage contract (adapters/contract.ts), run against every store: SQLite, and Redis as
 * one server, through Sentinel and as a Cluster. Whatever passes here for one must pass for
 * the others, so the server behaves the same on any. The test files (contract*.test.ts) each
 * run it for some kinds, so the slower Redis set-ups run in parallel.
 *
 * Each store gets its own backend for the whole suite (a temp data directory, a real
 * redis-server with persistence on, a master + replica + Sentinel, or a three-master
 * Cluster), started once in `before`.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Cluster, Redis } from 'ioredis';
import {
  AccountExistsError,
  AlreadyConsumedError,
  StoreError,
  type AccountRecord,
  type AdapterPayload,
  type ClientRecord,
  type GrantRecord,
  type RevocationEntry,
  type RevocationEvent,
  type Store,
} from '../../adapters/contract.js';
import { sha256 } from '../../adapters/hash.js';
import { openStore, type RedisConnection } from '../../adapters/index.js';
import { openSqliteStore, SQLITE_FILE_NAME, type SqliteStore } from '../../adapters/sqlite/store.js';
import { freePort, startRedis, startRedisCluster, startSentinel, type RedisServer } from '../helpers/redis.js';

const run = promisify(execFile);
export type StoreKind = 'sqlite' | 'redis' | 'redis-sentinel' | 'redis-cluster';

interface Backend {
  /** a new store object over the same data (a second replica / process) */
  open(keyPrefix?: string): Promise<Store>;
  /** everything the backend holds, as text: the SQLite files' bytes, or Redis keys and values */
  storedText(): Promise<string>;
  /** the event JSON of every revocation entry physically stored (pruned or not yet), oldest first */
  storedRevocations(): Promise<string[]>;
  dispose(): Promise<void>;
}

interface SqliteBackend extends Backend {
  dataDir: string;
}

interface RedisBackend extends Backend {
  /** the one redis-server (standalone only) */
  server: RedisServer | undefined;
  keyPrefix: string;
  /** a plain client, for looking at keys and TTLs */
  inspector: Redis | Cluster;
  /** the keys matching `pattern` on every master */
  keys(pattern: string): Promise<string[]>;
}

function sqliteBackend(): SqliteBackend {
  const root = mkdtempSync(join(tmpdir(), 'mcp-authz-sqlite-'));
  const dataDir = join(root, 'data'); // absent: openStore must create it
  return {
    dataDir,
    open: () => openStore({ dataDir, redisKeyPrefix: 'unused:' }),
    async storedText() {
      // Read by another process: opening and closing the database file in this one would
      // drop every POSIX lock this process's SQLite connections hold on it (fcntl locks are
      // per process), and a connection closing in another process (the CLI in a test below)
      // would then think it was the last one and delete the WAL under the open connections.
      const files = readdirSync(dataDir).map((name) => join(dataDir, name));
      const parts = await Promise.all(
        files.map((file) => run('cat', [file], { encoding: 'latin1', maxBuffer: 256 * 1024 * 1024 })),
      );
      return parts.map((part) => part.stdout).join('\n');
    },
    async storedRevocations() {
      const raw = new Database(join(dataDir, SQLITE_FILE_NAME));
      try {
        return raw.prepare('SELECT event FROM revocations ORDER BY id').pluck().all() as string[];
      } finally {
        raw.close();
      }
    },
    async dispose() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function dumpRedis(inspector: Redis | Cluster, keys: string[]): Promise<string> {
  const parts: string[] = [];
  for (const key of keys) {
    parts.push(key);
    const type = await inspector.type(key);
    if (type === 'hash') parts.push(...Object.entries(await inspector.hgetall(key)).flat());
    else if (type === 'set') parts.push(...(await inspector.smembers(key)));
    else if (type === 'string') parts.push((await inspector.get(key)) ?? '');
  }
  return parts.join('\n');
}

const node = (hostPort: string) => ({ host: hostPort.split(':')[0]!, port: Number(hostPort.split(':')[1]) });

async function redisBackend(kind: Exclude<StoreKind, 'sqlite'>): Promise<RedisBackend> {
  let connection: RedisConnection;
  let inspector: Redis | Cluster;
  let server: RedisServer | undefined;
  let stop: () => Promise<void>;
  if (kind === 'redis') {
    const standalone = await startRedis({ persist: true });
    server = standalone;
    connection = { mode: 'standalone', url: standalone.url };
    inspector = new Redis(standalone.url);
    stop = () => standalone.stop();
  } else if (kind === 'redis-sentinel') {
    const set = await startSentinel();
    connection = { mode: 'sentinel', sentinels: set.sentinels.map(node), name: set.name };
    inspector = new Redis({ sentinels: connection.sentinels, name: set.name });
    stop = () => set.stop();
  } else {
    const cluster = await startRedisCluster();
    connection = { mode: 'cluster', nodes: cluster.nodes.map(node) };
    inspector = new Cluster(connection.nodes);
    stop = () => cluster.stop();
  }
  const keyPrefix = 'contract:';
  const keys = async (pattern: string) =>
    inspector instanceof Cluster ? (await Promise.all(inspector.nodes('master').map((n) => n.keys(pattern)))).flat() : inspector.keys(pattern);
  return {
    server,
    keyPrefix,
    inspector,
    keys,
    open: (prefix = keyPrefix) => openStore({ dataDir: '/nonexistent', redis: connection, redisKeyPrefix: prefix }),
    storedText: async () => dumpRedis(inspector, await keys(`${keyPrefix}*`)),
    async storedRevocations() {
      const entries = await inspector.xrange(`${keyPrefix}revocations`, '-', '+');
      return entries.map(([, fields]) => fields[fields.indexOf('e') + 1] ?? '');
    },
    async dispose() {
      inspector.disconnect();
      await stop();
    },
  };
}

/** A fresh, recognisable id: never shared between tests. */
function newId(label: string): string {
  return `${label}-${randomBytes(16).toString('base64url')}`;
}

function tokenPayload(kind: string, id: string, extra: Partial<AdapterPayload> = {}): AdapterPayload {
  const now = Math.floor(Date.now() / 1000);
  return { iat: now, exp: now + 600, jti: id, kind, accountId: 'account-1', clientId: 'client-1', ...extra };
}

function epochSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** a token revocation that matters for `ttl` more seconds (negative: already expired) */
function tokenEvent(label: string, ttl = 600): RevocationEvent {
  return { type: 'token', jti: newId(label), until: epochSeconds() + ttl };
}

/** Orders entry ids numerically, part by part ("12" for SQLite, "1700000000000-3" for Redis). */
function compareIds(a: string, b: string): number {
  const [pa, pb] = [a.split('-').map(BigInt), b.split('-').map(BigInt)];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const [x, y] = [pa[i] ?? -1n, pb[i] ?? -1n];
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function assertIncreasing(ids: string[]): void {
  for (let i = 1; i < ids.length; i++) {
    assert.ok(compareIds(ids[i - 1]!, ids[i]!) < 0, `id ${ids[i]} follows ${ids[i - 1]}`);
  }
}

function jtiOf(entry: RevocationEntry): string | undefined {
  return entry.event.type === 'token' ? entry.event.jti : undefined;
}

function account(username: string, roles: string[] = ['user']): AccountRecord {
  const now = Date.now();
  return { id: newId('acct'), username, passwordHash: `hash-of-${username}`, roles, createdAt: now, updatedAt: now };
}

/** The whole contract for one kind of store, as one `describe`. */
export function contractSuite(kind: StoreKind): void {
  describe(`${kind} store`, () => {
    let backend: SqliteBackend | RedisBackend;
    let store: Store;
    const extra: Store[] = [];

    /** a second store object on the same data, closed after the suite */
    async function another(keyPrefix?: string): Promise<Store> {
      const opened = await backend.open(keyPrefix);
      extra.push(opened);
      return opened;
    }

    before(async () => {
      backend = kind === 'sqlite' ? sqliteBackend() : await redisBackend(kind);
      store = await backend.open();
    });

    after(async () => {
      for (const s of extra) await s.close();
      await store?.close();
      await backend?.dispose();
    });

    it('reports its kind and answers ping', async () => {
      assert.equal(store.kind, kind === 'sqlite' ? 'sqlite' : 'redis');
      await store.ping();
      assert.equal(store.model('AccessToken'), store.model('AccessToken'));
    });

    it('round-trips a payload, restoring jti from the id', async () => {
      const id = newId('at');
      const payload = tokenPayload('AccessToken', id, { grantId: newId('grant'), scope: 'openid', extra: { a: [1] } });
      await store.model('AccessToken').upsert(id, payload, 600);
      assert.deepEqual(await store.model('AccessToken').find(id), payload);
      // the same id under another model is another record
      assert.equal(await store.model('RefreshToken').find(id), undefined);
    });

    it('stores a record without expiresIn (as oidc-provider does for Client) with no expiry', async () => {
      const clientId = newId('client');
      const metadata = { client_id: clientId, redirect_uris: ['https://rp.example/cb'] };
      await store.model('Client').upsert(clientId, metadata, undefined as unknown as number);
      assert.deepEqual(await store.model('Client').find(clientId), { ...metadata, jti: clientId });
      await store.model('Client').destroy(clientId);
    });

    it('returns undefined for an unknown id', async () => {
      assert.equal(await store.model('AccessToken').find(newId('missing')), undefined);
      assert.equal(await store.model('Session').findByUid(newId('uid')), undefined);
      assert.equal(await store.model('DeviceCode').findByUserCode('NOPE-NOPE'), undefined);
    });

    it('never returns an expired record (record, uid and userCode lookups)', async () => {
      const tokenId = newId('short');
      const sessionId = newId('sess');
      const uid = newId('uid');
      const deviceId = newId('dc');
      const userCode = `EXP-${randomBytes(4).toString('hex')}`;
      await store.model('AccessToken').upsert(tokenId, tokenPayload('AccessToken', tokenId), 1);
      await store.model('Session').upsert(sessionId, { jti: sessionId, uid, kind: 'Session' }, 1);
      await store.model('DeviceCode').upsert(deviceId, tokenPayload('DeviceCode', deviceId, { userCode }), 1);
      assert.ok(await store.model('AccessToken').find(tokenId));
      assert.ok(await store.model('Session').findByUid(uid));
      assert.ok(await store.model('DeviceCode').findByUserCode(userCode));
      await sleep(1100);
      assert.equal(await store.model('AccessToken').find(tokenId), undefined);
      assert.equal(await store.model('Session').findByUid(uid), undefined);
      assert.equal(await store.model('DeviceCode').findByUserCode(userCode), undefined);
    });

    it('treats a non-positive expiresIn as already expired', async () => {
      const id = newId('dead');
      await store.model('AccessToken').upsert(id, tokenPayload('AccessToken', id), 600);
      await store.model('AccessToken').upsert(id, tokenPayload('AccessToken', id), 0);
      assert.equal(await store.model('AccessToken').find(id), undefined);
    });

    it('consume marks the record consumed; a second consume throws AlreadyConsumedError', async () => {
      const id = newId('code');
      const model = store.model('AuthorizationCode');
      await model.upsert(id, tokenPayload('AuthorizationCode', id), 60);
      const before = Math.floor(Date.now() / 1000);
      await model.consume(id);
      const consumed = (await model.find(id))?.consumed;
      assert.ok(typeof consumed === 'number', 'consumed is set');
      assert.ok(consumed >= before && consumed <= Math.floor(Date.now() / 1000));
      await assert.rejects(model.consume(id), (err: unknown) => {
        assert.ok(err instanceof AlreadyConsumedError);
        assert.equal(err.model, 'AuthorizationCode');
        return true;
      });
      // a missing record is a no-op
      await model.consume(newId('missing'));
    });

    it('keeps a consumed marker that arrives in the payload', async () => {
      const id = newId('rt');
      await store.model('RefreshToken').upsert(id, tokenPayload('RefreshToken', id, { consumed: 1234 }), 60);
      assert.equal((await store.model('RefreshToken').find(id))?.consumed, 1234);
      await assert.rejects(store.model('RefreshToken').consume(id), AlreadyConsumedError);
    });

    it('consumes exactly once under 50 concurrent calls from two store objects', async () => {
      const second = await another();
      const id = newId('race');
      await store.model('AuthorizationCode').upsert(id, tokenPayload('AuthorizationCode', id), 60);
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? store : second).model('AuthorizationCode').consume(id)),
      );
      const fulfilled = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(fulfilled.length, 1);
      assert.equal(rejected.length, 49);
      for (const r of rejected) assert.ok(r.reason instanceof AlreadyConsumedError);
    });

    it('destroy removes the record (and is a no-op for a missing one)', async () => {
      const id = newId('gone');
      await store.model('AccessToken').upsert(id, tokenPayload('AccessToken', id), 60);
      await store.model('AccessToken').destroy(id);
      assert.equal(await store.model('AccessToken').find(id), undefined);
      await store.model('AccessToken').destroy(id);
    });

    it('findByUid returns the Session with its jti; gone after destroy', async () => {
      const id = newId('sess');
      const uid = newId('uid');
      const payload = { jti: id, uid, kind: 'Session', accountId: 'a', loginTs: 1 };
      await store.model('Session').upsert(id, payload, 60);
      assert.deepEqual(await store.model('Session').findByUid(uid), payload);
      assert.equal(await store.model('AccessToken').findByUid(uid), undefined, 'the index is per model');
      await store.model('Session').destroy(id);
      assert.equal(await store.model('Session').findByUid(uid), undefined);
    });

    it('re-upserting a Session with a new uid drops the old uid index', async () => {
      const id = newId('sess');
      const [uid1, uid2] = [newId('uid'), newId('uid')];
      await store.model('Session').upsert(id, { jti: id, uid: uid1, kind: 'Session' }, 60);
      await store.model('Session').upsert(id, { jti: id, uid: uid2, kind: 'Session' }, 60);
      assert.equal(await store.model('Session').findByUid(uid1), undefined);
      assert.equal((await store.model('Session').findByUid(uid2))?.jti, id);
    });

    it('findByUserCode returns the DeviceCode with its jti; gone after destroy', async () => {
      const id = newId('dc');
      const userCode = `UC-${randomBytes(4).toString('hex')}`;
      const payload = tokenPayload('DeviceCode', id, { userCode, grantId: newId('grant') });
      await store.model('DeviceCode').upsert(id, payload, 60);
      assert.deepEqual(await store.model('DeviceCode').findByUserCode(userCode), payload);
      await store.model('DeviceCode').consume(id);
      assert.equal(typeof (await store.model('DeviceCode').findByUserCode(userCode))?.consumed, 'number');
      await store.model('DeviceCode').destroy(id);
      assert.equal(await store.model('DeviceCode').findByUserCode(userCode), undefined);
    });

    it('revokeByGrantId removes every record of the grant in that model, and nothing else', async () => {
      const [g1, g2] = [newId('grant'), newId('grant')];
      const [a1, a2, a3, r1, d1] = ['a1', 'a2', 'a3', 'r1', 'd1'].map(newId) as [string, string, string, string, string];
      const userCode = `RV-${randomBytes(4).toString('hex')}`;
      await store.model('AccessToken').upsert(a1, tokenPayload('AccessToken', a1, { grantId: g1 }), 60);
      await store.model('AccessToken').upsert(a2, tokenPayload('AccessToken', a2, { grantId: g1 }), 120);
      await store.model('AccessToken').upsert(a3, tokenPayload('AccessToken', a3, { grantId: g2 }), 60);
      await store.model('RefreshToken').upsert(r1, tokenPayload('RefreshToken', r1, { grantId: g1 }), 60);
      await store.model('DeviceCode').upsert(d1, tokenPayload('DeviceCode', d1, { grantId: g1, userCode }), 60);

      await store.model('AccessToken').revokeByGrantId(g1);
      assert.equal(await store.model('AccessToken').find(a1), undefined);
      assert.equal(await store.model('AccessToken').find(a2), undefined);
      assert.ok(await store.model('AccessToken').find(a3), 'another grant is untouched');
      assert.ok(await store.model('RefreshToken').find(r1), 'another model is untouched');

      await store.model('RefreshToken').revokeByGrantId(g1);
      await store.model('DeviceCode').revokeByGrantId(g1);
      assert.equal(await store.model('RefreshToken').find(r1), undefined);
      assert.equal(await store.model('DeviceCode').find(d1), undefined);
      assert.equal(await store.model('DeviceCode').findByUserCode(userCode), undefined);
      await store.model('AccessToken').revokeByGrantId(newId('no-such-grant'));
    });

    it('stores AccessToken / RefreshToken ids and user codes only hashed', async () => {
      const at = newId('ATSECRET');
      const rt = newId('RTSECRET');
      const userCode = `UCSECRET-${randomBytes(6).toString('hex')}`;
      const dc = newId('dc');
      await store.model('AccessToken').upsert(at, tokenPayload('AccessToken', at, { grantId: newId('grant') }), 60);
      await store.model('RefreshToken').upsert(rt, tokenPayload('RefreshToken', rt, { grantId: newId('grant') }), 60);
      await store.model('DeviceCode').upsert(dc, tokenPayload('DeviceCode', dc, { userCode }), 60);
      const stored = await backend.storedText();
      assert.ok(stored.includes(sha256(at)), 'positive control: the hash of the id is stored');
      assert.ok(stored.includes(sha256(rt)));
      assert.ok(stored.includes(sha256(userCode)), 'the user code index is hashed');
      assert.ok(!stored.includes(at), 'the access token id is not stored in the clear');
      assert.ok(!stored.includes(rt), 'the refresh token id is not stored in the clear');
    });

    it('accounts: create, find, list ordered by username, duplicate, update, remove', async () => {
      const carol = account('carol');
      const alice = account('alice', ['admin']);
      const bob = account('bob');
      for (const a of [carol, alice, bob]) await store.accounts.create(a);

      assert.deepEqual(await store.accounts.findByUsername('alice'), alice);
      assert.deepEqual(await store.accounts.findById(bob.id), bob);
      assert.equal(await store.accounts.findByUsername('nobody'), undefined);
      assert.equal(await store.accounts.findById('no-such-id'), undefined);
      assert.deepEqual(
        (await store.accounts.list()).map((a) => a.username),
        ['alice', 'bob', 'carol'],
      );

      await assert.rejects(store.accounts.create(account('alice')), (err: unknown) => {
        assert.ok(err instanceof AccountExistsError);
        assert.equal(err.username, 'alice');
        return true;
      });
      assert.equal((await store.accounts.findByUsername('alice'))?.id, alice.id, 'the original is kept');

      assert.equal(await store.accounts.update('alice', { passwordHash: 'new-hash' }), true);
      let updated = await store.accounts.findByUsername('alice');
      assert.equal(updated?.passwordHash, 'new-hash');
      assert.deepEqual(updated?.roles, ['admin'], 'fields not in the patch are kept');
      assert.ok(updated && updated.updatedAt >= alice.updatedAt);
      assert.equal(await store.accounts.update('alice', { roles: ['admin', 'user'] }), true);
      updated = await store.accounts.findByUsername('alice');
      assert.deepEqual(updated?.roles, ['admin', 'user']);
      assert.equal(updated?.passwordHash, 'new-hash');
      assert.equal(await store.accounts.update('nobody', { roles: [] }), false);

      assert.equal(await store.accounts.remove('bob'), true);
      assert.equal(await store.accounts.remove('bob'), false);
      assert.equal(await store.accounts.findById(bob.id), undefined);
      assert.deepEqual(
        (await store.accounts.list()).map((a) => a.username),
        ['alice', 'carol'],
      );
      // the username is free again
      await store.accounts.create(account('bob'));
    });

    it('accounts: connection, display name, e-mail and second factors are kept; an empty value clears one', async () => {
      const dana = { ...account('dana'), connection: 'corp-oidc', displayName: 'Dana Ng', email: 'dana@corp.example' };
      await store.accounts.create(dana);
      assert.deepEqual(await store.accounts.findById(dana.id), dana);
      assert.equal(await store.accounts.update('dana', { secondFactors: '{"totp":{}}', displayName: 'Dana N.' }), true);
      let updated = await store.accounts.findByUsername('dana');
      assert.equal(updated?.secondFactors, '{"totp":{}}');
      assert.equal(updated?.displayName, 'Dana N.');
      assert.equal(updated?.connection, 'corp-oidc', 'the connection never changes');
      assert.equal(updated?.email, 'dana@corp.example', 'fields not in the patch are kept');
      assert.equal(await store.accounts.update('dana', { secondFactors: '', email: '' }), true);
      updated = await store.accounts.findByUsername('dana');
      assert.equal(updated?.secondFactors, undefined);
      assert.equal(updated?.email, undefined);
      assert.equal(updated?.displayName, 'Dana N.');
      // a local account has none of them
      const local = await store.accounts.findByUsername('bob');
      assert.deepEqual(
        [local?.connection, local?.displayName, local?.email, local?.secondFactors],
        [undefined, undefined, undefined, undefined],
      );
    });

    it('settings: concurrent create-if-absent has exactly one winner', async () => {
      const second = await another();
      const name = newId('setting');
      const results = await Promise.all([
        store.settings.create(name, 'from-first'),
        second.settings.create(name, 'from-second'),
        store.settings.create(name, 'from-first-again'),
      ]);
      assert.equal(results.filter(Boolean).length, 1);
      const winner = ['from-first', 'from-second', 'from-first-again'][results.indexOf(true)];
      assert.deepEqual(await store.settings.get(name), { value: winner, version: 1 });
      assert.equal(await store.settings.get(newId('absent')), undefined);
    });

    it('settings: compare-and-swap refuses a stale version', async () => {
      const name = newId('setting');
      assert.equal(await store.settings.create(name, 'v1'), true);
      assert.equal(await store.settings.replace(name, 1, 'v2'), true);
      assert.deepEqual(await store.settings.get(name), { value: 'v2', version: 2 });
      assert.equal(await store.settings.replace(name, 1, 'stale'), false);
      assert.deepEqual(await store.settings.get(name), { value: 'v2', version: 2 });
      assert.equal(await store.settings.replace(newId('absent'), 1, 'x'), false);
      // of two replicas racing from the same version, one wins
      const second = await another();
      const raced = await Promise.all([store.settings.replace(name, 2, 'a'), second.settings.replace(name, 2, 'b')]);
      assert.equal(raced.filter(Boolean).length, 1);
      assert.equal((await store.settings.get(name))?.version, 3);
    });

    it('revocations: append / readAfter round-trip, in append order, ids increasing', async () => {
      const log = store.revocations;
      const start = await log.append(tokenEvent('marker'));
      const now = epochSeconds();
      const events: RevocationEvent[] = [
        { type: 'token', jti: newId('jti'), until: now + 600 },
        { type: 'grant', grantId: newId('grant'), until: now + 3600 },
        { type: 'subject', sub: newId('sub'), before: now, until: now + 3600 },
        { type: 'token', jti: newId('jti'), until: now + 60 },
      ];
      const ids: string[] = [];
      for (const event of events) ids.push(await log.append(event));
      assertIncreasing([start, ...ids]);

      assert.deepEqual(await log.readAfter(start, 100), ids.map((id, i) => ({ id, event: events[i] })));
      // from the start (afterId undefined): every retained entry, these last and in order
      const all = await log.readAfter(undefined, 100_000);
      assertIncreasing(all.map((e) => e.id));
      assert.deepEqual(all.slice(-ids.length).map((e) => e.id), ids);
      assert.ok(all.some((e) => e.id === start));
      // without waitMs, nothing new answers at once
      const began = Date.now();
      assert.deepEqual(await log.readAfter(ids.at(-1), 100), []);
      assert.ok(Date.now() - began < 1000, 'answered without waiting (a wait would be waitMs, 3 s elsewhere)');
    });

    it('revocations: resuming after an id returns only later entries; limit caps a batch', async () => {
      const log = store.revocations;
      const start = await log.append(tokenEvent('marker'));
      const events = Array.from({ length: 5 }, (_, i) => tokenEvent(`resume${i}`));
      const ids: string[] = [];
      for (const event of events) ids.push(await log.append(event));
      const entry = (i: number): RevocationEntry => ({ id: ids[i]!, event: events[i]! });

      assert.deepEqual(await log.readAfter(ids[1], 100), [entry(2), entry(3), entry(4)]);
      assert.deepEqual(await log.readAfter(start, 2), [entry(0), entry(1)]);
      assert.deepEqual(await log.readAfter(ids[1], 2), [entry(2), entry(3)]);
      assert.deepEqual(await log.readAfter(ids[3], 2), [entry(4)]);
      assert.deepEqual(await log.readAfter(ids[4], 10), []);
      assert.deepEqual(await log.readAfter(start, 0), [], 'a non-positive limit returns nothing');
      // paging through with a small limit gives the same sequence
      const paged: RevocationEntry[] = [];
      for (let after = start; ; ) {
        const batch = await log.readAfter(after, 2);
        if (batch.length === 0) break;
        paged.push(...batch);
        after = batch.at(-1)!.id;
      }
      assert.deepEqual(paged, [0, 1, 2, 3, 4].map(entry));
    });

    it('revocations: expired entries are skipped (not counted against limit) and prune removes only them', async () => {
      const log = store.revocations;
      const start = await log.append(tokenEvent('marker'));
      const live1 = tokenEvent('live', 600);
      const expired = [tokenEvent('expired', -10), tokenEvent('expired', -1), tokenEvent('expired', 0)];
      const live2 = tokenEvent('live', 30);
      const liveIds = [await log.append(live1)];
      for (const event of expired) await log.append(event);
      liveIds.push(await log.append(live2));

      const expectLive = [
        { id: liveIds[0], event: live1 },
        { id: liveIds[1], event: live2 },
      ];
      assert.deepEqual(await log.readAfter(start, 2), expectLive, 'expired entries are skipped and the batch filled');
      assert.deepEqual(await log.readAfter(liveIds[0], 10), [expectLive[1]]);
      let stored = (await backend.storedRevocations()).join('\n');
      for (const event of [live1, live2, ...expired]) {
        assert.ok(stored.includes((event as { jti: string }).jti), 'positive control: every entry is stored until pruned');
      }

      await log.prune(epochSeconds());
      stored = (await backend.storedRevocations()).join('\n');
      for (const event of expired) assert.ok(!stored.includes((event as { jti: string }).jti), 'an expired entry is pruned');
      for (const event of [live1, live2]) assert.ok(stored.includes((event as { jti: string }).jti), 'a live entry is kept');
      assert.deepEqual(await log.readAfter(start, 10), expectLive);
      assert.deepEqual(await log.readAfter(liveIds[0], 10), [expectLive[1]]);
    });

    it('revocations: readAfter with waitMs answers as soon as another store object appends', async () => {
      const other = await another();
      const start = await store.revocations.append(tokenEvent('marker'));

      const event = tokenEvent('late');
      let began = Date.now();
      const reading = store.revocations.readAfter(start, 10, 3000);
      await sleep(200);
      const id = await other.revocations.append(event);
      assert.deepEqual(await reading, [{ id, event }]);
      let elapsed = Date.now() - began;
      assert.ok(elapsed >= 150 && elapsed < 2500, `answered after ${elapsed} ms (woken, not the 3 s wait)`);

      // the same object appending wakes it too
      const own = tokenEvent('own');
      began = Date.now();
      const waiting = store.revocations.readAfter(id, 10, 3000);
      await sleep(200);
      const ownId = await store.revocations.append(own);
      assert.deepEqual(await waiting, [{ id: ownId, event: own }]);
      elapsed = Date.now() - began;
      assert.ok(elapsed < 2500, `answered after ${elapsed} ms (woken, not the 3 s wait)`);

      // entries already there but expired do not end the wait; the next live one does
      await other.revocations.append(tokenEvent('expired', -5));
      const fresh = tokenEvent('fresh');
      began = Date.now();
      const third = store.revocations.readAfter(ownId, 10, 3000);
      await sleep(200);
      const freshId = await other.revocations.append(fresh);
      assert.deepEqual(await third, [{ id: freshId, event: fresh }]);
      elapsed = Date.now() - began;
      assert.ok(elapsed >= 150 && elapsed < 2500, `answered after ${elapsed} ms (woken, not the 3 s wait)`);

      // an entry already there answers at once, without waiting
      began = Date.now();
      assert.deepEqual(await other.revocations.readAfter(ownId, 10, 3000), [{ id: freshId, event: fresh }]);
      assert.ok(Date.now() - began < 2500, 'answered without the 3 s wait');
    });

    it('revocations: readAfter with waitMs and nothing appended answers [] after about waitMs', async () => {
      const start = await store.revocations.append(tokenEvent('marker'));
      for (const waitMs of [500, 120]) {
        const began = Date.now();
        assert.deepEqual(await store.revocations.readAfter(start, 10, waitMs), []);
        const elapsed = Date.now() - began;
        assert.ok(elapsed >= waitMs - 20 && elapsed < waitMs + 1000, `waited ${elapsed} ms for ${waitMs}`);
      }
    });

    it('revocations: close() ends a pending wait with []', async () => {
      const closing = await another();
      const start = await closing.revocations.append(tokenEvent('marker'));
      const began = Date.now();
      const waiting = closing.revocations.readAfter(start, 10, 5000);
      await sleep(100);
      await closing.close();
      assert.deepEqual(await waiting, []);
      assert.ok(Date.now() - began < 2000);
    });

    it('revocations: an afterId that is not an id of this store reads from the start', async () => {
      await store.revocations.append(tokenEvent('garbage-test'));
      const all = await store.revocations.readAfter(undefined, 100_000);
      assert.ok(all.length > 0);
      const foreign = kind === 'sqlite' ? '1-0' : '1';
      for (const garbage of ['garbage', '', ' 1', '1.5', '-1', '1e3', '0x10', '١٢', foreign, '99999999999999999999999-0']) {
        assert.deepEqual(await store.revocations.readAfter(garbage, 100_000), all, `afterId ${JSON.stringify(garbage)}`);
      }
      // an id older than anything retained answers from the oldest retained entry
      assert.deepEqual(await store.revocations.readAfter(kind === 'sqlite' ? '0' : '0-1', 100_000), all);
    });

    it('revocations: concurrent appends from two store objects all arrive once, in one order for every reader', async () => {
      const other = await another();
      const start = await store.revocations.append(tokenEvent('marker'));
      const events = Array.from({ length: 60 }, (_, i) => tokenEvent(`concurrent${i}`));
      const appended = await Promise.all(events.map((event, i) => (i % 2 === 0 ? store : other).revocations.append(event)));
      assert.equal(new Set(appended).size, events.length, 'every append got its own id');

      const third = await another();
      const views = await Promise.all([store, other, third].map((s) => s.revocations.readAfter(start, 1000)));
      const [view] = views as [RevocationEntry[]];
      for (const v of views) assert.deepEqual(v, view, 'every reader sees the same order');
      assert.equal(view.length, events.length);
      assertIncreasing(view.map((e) => e.id));
      assert.deepEqual(new Set(view.map(jtiOf)), new Set(events.map((e) => (e as { jti: string }).jti)));
      appended.forEach((id, i) => assert.deepEqual(view.find((e) => e.id === id)?.event, events[i]));
      // a reader paging through in small batches sees the same sequence
      const paged: RevocationEntry[] = [];
      for (let after = start; ; ) {
        const batch = await third.revocations.readAfter(after, 7);
        if (batch.length === 0) break;
        paged.push(...batch);
        after = batch.at(-1)!.id;
      }
      assert.deepEqual(paged, view);
    });

    it('clients: put, get, list ordered by clientId, replace, remove', async () => {
      const tag = newId('dir');
      const now = Date.now();
      const zeta: ClientRecord = { clientId: `${tag}-zeta`, kind: 'dcr', name: 'Zeta', createdAt: now - 5000, lastUsedAt: now };
      const alpha: ClientRecord = { clientId: `${tag}-alpha`, kind: 'static', createdAt: now - 4000 };
      const beta: ClientRecord = { clientId: `${tag}-Beta`, kind: 'cimd', name: 'Beta (CIMD)', createdAt: now - 3000 };
      const url: ClientRecord = { clientId: `${tag}-https://client.example/metadata.json?v=1`, kind: 'cimd', createdAt: now };
      await store.clients.put(zeta);
      await store.clients.put(alpha);
      await store.clients.put(beta, now + 60_000);
      await store.clients.put(url, now + 60_000);
      const mine = async () => (await store.clients.list()).filter((c) => c.clientId.startsWith(tag));

      assert.deepEqual(await store.clients.get(zeta.clientId), zeta);
      assert.deepEqual(await store.clients.get(alpha.clientId), alpha, 'absent optional fields stay absent');
      assert.deepEqual(await store.clients.get(url.clientId), url);
      assert.equal(await store.clients.get(`${tag}-nobody`), undefined);
      // code-unit order ('B' sorts before 'a'), the same on both stores
      assert.deepEqual(await mine(), [beta, alpha, url, zeta]);
      const second = await another();
      assert.deepEqual((await second.clients.list()).filter((c) => c.clientId.startsWith(tag)), [beta, alpha, url, zeta], 'another store object sees them');

      // replacing drops fields the new record lacks and can change the kind
      const zeta2: ClientRecord = { clientId: zeta.clientId, kind: 'static', createdAt: zeta.createdAt };
      await store.clients.put(zeta2);
      assert.deepEqual(await store.clients.get(zeta.clientId), zeta2);
      const alpha2: ClientRecord = { ...alpha, lastUsedAt: now + 1, name: 'Alpha' };
      await second.clients.put(alpha2, now + 60_000);
      assert.deepEqual(await store.clients.get(alpha.clientId), alpha2);
      assert.deepEqual(await mine(), [beta, alpha2, url, zeta2], 'replacing does not duplicate the record in list()');

      assert.equal(await store.clients.remove(beta.clientId), true);
      assert.equal(await store.clients.remove(beta.clientId), false);
      assert.equal(await store.clients.remove(`${tag}-nobody`), false);
      assert.equal(await store.clients.get(beta.clientId), undefined);
      assert.deepEqual(await mine(), [alpha2, url, zeta2]);
      for (const c of [alpha2, url, zeta2]) assert.equal(await store.clients.remove(c.clientId), true);
      assert.deepEqual(await mine(), []);
    });

    it('clients: an expired record is never returned, listed or removed; replacing changes its expiry', async () => {
      const tag = newId('exp');
      const now = Date.now();
      const record = (name: string): ClientRecord => ({ clientId: `${tag}-${name}`, kind: 'dcr', createdAt: now });
      const mine = async () => (await store.clients.list()).filter((c) => c.clientId.startsWith(tag)).map((c) => c.clientId);

      await store.clients.put(record('past'), now - 1000);
      assert.equal(await store.clients.get(`${tag}-past`), undefined);
      assert.equal(await store.clients.remove(`${tag}-past`), false);
      assert.deepEqual(await mine(), []);

      await store.clients.put(record('short'), now + 1000);
      await store.clients.put(record('long'), now + 60_000);
      await store.clients.put(record('forever'));
      // kept forever → now expiring, and expiring → now kept forever
      await store.clients.put(record('shortened'));
      await store.clients.put(record('shortened'), now + 1000);
      await store.clients.put(record('extended'), now + 1000);
      await store.clients.put(record('extended'));
      assert.deepEqual(await mine(), ['extended', 'forever', 'long', 'short', 'shortened'].map((n) => `${tag}-${n}`));
      assert.deepEqual(await store.clients.get(`${tag}-short`), record('short'));

      await sleep(Math.max(0, now + 1100 - Date.now()));
      assert.equal(await store.clients.get(`${tag}-short`), undefined);
      assert.equal(await store.clients.get(`${tag}-shortened`), undefined);
      assert.deepEqual(await store.clients.get(`${tag}-extended`), record('extended'));
      assert.deepEqual(await mine(), ['extended', 'forever', 'long'].map((n) => `${tag}-${n}`));
      assert.equal(await store.clients.remove(`${tag}-short`), false, 'an expired record does not exist');
      // an expired id may be put again
      await store.clients.put(record('short'), Date.now() + 60_000);
      assert.deepEqual(await store.clients.get(`${tag}-short`), record('short'));
      assert.deepEqual(await mine(), ['extended', 'forever', 'long', 'short'].map((n) => `${tag}-${n}`));
    });

    it('grants: put, get, list by account, client, both or none (newest first), replace, remove', async () => {
      const tag = newId('g');
      const now = Date.now();
      const [alice, bob] = [newId('alice'), newId('bob')];
      const [web, cli] = [`${tag}-web`, `${tag}-https://client.example/doc.json`];
      const grant = (n: string, accountId: string, clientId: string, createdAt: number, lastUsedAt?: number): GrantRecord => ({
        grantId: `${tag}-${n}`,
        accountId,
        clientId,
        createdAt,
        ...(lastUsedAt === undefined ? {} : { lastUsedAt }),
      });
      const g1 = grant('1', alice, web, now - 3000, now - 10);
      const g2 = grant('2', alice, cli, now - 1000);
      const g3 = grant('3', bob, web, now - 2000);
      const g4 = grant('4', alice, web, now - 1000); // same time as g2: ties go by grant id
      for (const g of [g1, g2, g3, g4]) await store.grants.put(g, now + 60_000);
      const mine = (records: GrantRecord[]) => records.filter((r) => r.grantId.startsWith(tag));

      assert.deepEqual(await store.grants.get(g1.grantId), g1);
      assert.deepEqual(await store.grants.get(g2.grantId), g2, 'an absent lastUsedAt stays absent');
      assert.equal(await store.grants.get(`${tag}-nobody`), undefined);
      assert.deepEqual(mine(await store.grants.list()), [g2, g4, g3, g1], 'newest first, ties by grant id');
      assert.deepEqual(mine(await store.grants.list({})), [g2, g4, g3, g1]);
      assert.deepEqual(await store.grants.list({ accountId: alice }), [g2, g4, g1]);
      assert.deepEqual(await store.grants.list({ clientId: web }), [g4, g3, g1]);
      assert.deepEqual(await store.grants.list({ clientId: cli }), [g2]);
      assert.deepEqual(await store.grants.list({ accountId: alice, clientId: web }), [g4, g1]);
      assert.deepEqual(await store.grants.list({ accountId: bob, clientId: cli }), []);
      assert.deepEqual(await store.grants.list({ accountId: newId('nobody') }), []);
      const second = await another();
      assert.deepEqual(await second.grants.list({ accountId: alice }), [g2, g4, g1], 'another store object sees them');

      // replacing: one record, new fields; a grant moved to another account and client leaves the old lists
      const g1b: GrantRecord = { ...g1, lastUsedAt: now };
      await second.grants.put(g1b, now + 60_000);
      assert.deepEqual(await store.grants.get(g1.grantId), g1b);
      assert.deepEqual(await store.grants.list({ accountId: alice }), [g2, g4, g1b]);
      const g3moved: GrantRecord = { grantId: g3.grantId, accountId: alice, clientId: cli, createdAt: g3.createdAt };
      await store.grants.put(g3moved, now + 60_000);
      assert.deepEqual(await store.grants.list({ accountId: bob }), []);
      assert.deepEqual(await store.grants.list({ clientId: web }), [g4, g1b]);
      assert.deepEqual(await store.grants.list({ accountId: alice, clientId: cli }), [g2, g3moved]);

      assert.equal(await store.grants.remove(g2.grantId), true);
      assert.equal(await store.grants.remove(g2.grantId), false);
      assert.equal(await store.grants.remove(`${tag}-nobody`), false);
      assert.equal(await store.grants.get(g2.grantId), undefined);
      assert.deepEqual(await store.grants.list({ accountId: alice }), [g4, g3moved, g1b]);
      assert.deepEqual(await store.grants.list({ clientId: cli }), [g3moved]);
      for (const g of [g1, g3, g4]) assert.equal(await second.grants.remove(g.grantId), true);
      assert.deepEqual(mine(await store.grants.list()), []);
      assert.deepEqual(await store.grants.list({ accountId: alice }), []);
    });

    it('grants: touch moves lastUsedAt forward only, on an existing record only, and keeps its expiry', async () => {
      const now = Date.now();
      const record: GrantRecord = { grantId: newId('touch'), accountId: newId('acct'), clientId: 'touch-client', createdAt: now - 5000 };
      await store.grants.put(record, now + 1000);
      await store.grants.touch(record.grantId, now - 100);
      assert.deepEqual(await store.grants.get(record.grantId), { ...record, lastUsedAt: now - 100 });
      await store.grants.touch(record.grantId, now - 200);
      assert.equal((await store.grants.get(record.grantId))?.lastUsedAt, now - 100, 'never backwards');
      const second = await another();
      await second.grants.touch(record.grantId, now);
      assert.equal((await store.grants.get(record.grantId))?.lastUsedAt, now);

      const ghost = newId('ghost');
      await store.grants.touch(ghost, now);
      assert.equal(await store.grants.get(ghost), undefined, 'touch never creates a record');

      await sleep(Math.max(0, now + 1100 - Date.now()));
      assert.equal(await store.grants.get(record.grantId), undefined, 'touch did not extend the expiry');
      await store.grants.touch(record.grantId, Date.now());
      assert.equal(await store.grants.get(record.grantId), undefined, 'an expired record is not revived');
    });

    it('grants: an expired record is never returned, listed, or removed; it may be put again', async () => {
      const tag = newId('gexp');
      const now = Date.now();
      const accountId = newId('acct');
      const record = (n: string, createdAt = now): GrantRecord => ({ grantId: `${tag}-${n}`, accountId, clientId: `${tag}-client`, createdAt });
      await store.grants.put(record('past'), now - 1000);
      assert.equal(await store.grants.get(`${tag}-past`), undefined);
      assert.equal(await store.grants.remove(`${tag}-past`), false);
      assert.deepEqual(await store.grants.list({ accountId }), []);

      await store.grants.put(record('short', now - 1), now + 800);
      await store.grants.put(record('long'), now + 60_000);
      const ids = async (filter: { accountId?: string; clientId?: string }) => (await store.grants.list(filter)).map((g) => g.grantId);
      assert.deepEqual(await ids({ accountId }), [`${tag}-long`, `${tag}-short`]);
      await sleep(Math.max(0, now + 900 - Date.now()));
      assert.equal(await store.grants.get(`${tag}-short`), undefined);
      assert.deepEqual(await ids({ accountId }), [`${tag}-long`]);
      assert.deepEqual(await ids({ clientId: `${tag}-client` }), [`${tag}-long`]);
      assert.deepEqual((await store.grants.list()).filter((g) => g.grantId.startsWith(tag)).map((g) => g.grantId), [`${tag}-long`]);
      assert.equal(await store.grants.remove(`${tag}-short`), false, 'an expired record does not exist');
      await store.grants.put(record('short'), Date.now() + 60_000);
      assert.deepEqual(await store.grants.get(`${tag}-short`), record('short'));
    });

    it('rotations: undefined, then {} once claimed, then { outcome } once settled; only the first claim wins', async () => {
      const key = sha256(newId('rt'));
      assert.equal(await store.rotations.get(key), undefined);
      assert.equal(await store.rotations.claim(key, 30), true);
      assert.deepEqual(await store.rotations.get(key), {});
      assert.equal(await store.rotations.claim(key, 30), false);
      const second = await another();
      assert.deepEqual(await second.rotations.get(key), {}, 'another store object sees the claim');
      assert.equal(await second.rotations.claim(key, 30), false);

      await store.rotations.settle(key, 'sealed-answer', 30);
      assert.deepEqual(await store.rotations.get(key), { outcome: 'sealed-answer' });
      assert.deepEqual(await second.rotations.get(key), { outcome: 'sealed-answer' });
      assert.equal(await second.rotations.claim(key, 30), false, 'a settled rotation cannot be claimed');
      // an empty outcome is an outcome, not a claim
      const empty = sha256(newId('rt'));
      await store.rotations.claim(empty, 30);
      await store.rotations.settle(empty, '', 30);
      assert.deepEqual(await store.rotations.get(empty), { outcome: '' });
      assert.equal(await store.rotations.get(sha256(newId('other'))), undefined, 'keys are independent');
    });

    it('rotations: exactly one of 20 concurrent claims wins, on one store object and across two', async () => {
      const second = await another();
      const single = sha256(newId('rt'));
      const alone = await Promise.all(Array.from({ length: 20 }, () => store.rotations.claim(single, 30)));
      assert.equal(alone.filter(Boolean).length, 1);
      const shared = sha256(newId('rt'));
      const split = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : second).rotations.claim(shared, 30)),
      );
      assert.equal(split.filter(Boolean).length, 1);
    });

    it('rotations: release lets the next caller claim; it never drops a settled answer', async () => {
      const second = await another();
      const key = sha256(newId('rt'));
      assert.equal(await store.rotations.claim(key, 30), true);
      await store.rotations.release(key);
      assert.equal(await store.rotations.get(key), undefined);
      assert.equal(await second.rotations.claim(key, 30), true, 'claimed again after release');
      assert.equal(await store.rotations.claim(key, 30), false);
      await second.rotations.settle(key, 'answer', 30);
      await store.rotations.release(key);
      assert.deepEqual(await store.rotations.get(key), { outcome: 'answer' });
      await store.rotations.release(sha256(newId('never-claimed')));
    });

    it('rotations: a claim and a settled answer expire after their TTL; the key can then be claimed again', async () => {
      const [claimed, settled, lasting] = [newId('a'), newId('b'), newId('c')].map(sha256) as [string, string, string];
      assert.equal(await store.rotations.claim(claimed, 1), true);
      assert.equal(await store.rotations.claim(settled, 30), true);
      await store.rotations.settle(settled, 'answer', 1);
      assert.equal(await store.rotations.claim(lasting, 30), true);
      assert.deepEqual(await store.rotations.get(settled), { outcome: 'answer' });
      await sleep(1100);
      assert.equal(await store.rotations.get(claimed), undefined);
      assert.equal(await store.rotations.get(settled), undefined, 'settle sets the TTL from now');
      assert.deepEqual(await store.rotations.get(lasting), {});
      assert.equal(await store.rotations.claim(claimed, 30), true, 'an expired claim is absent');
      assert.equal(await store.rotations.claim(settled, 30), true, 'an expired answer is absent');
      assert.deepEqual(await store.rotations.get(settled), {}, 'the new claim is not settled');
      assert.equal(await store.rotations.claim(lasting, 30), false);
    });

    it('limits: max hits per sliding window, then refusals saying how long until the oldest hit leaves it', async () => {
      const key = newId('limit');
      const rule = { max: 3, windowMs: 10_000 };
      const t = Date.now();
      for (const at of [t, t + 1000, t + 2000]) {
        const allowed = await store.limits.hit(key, rule, { now: at });
        assert.equal(allowed.allowed, true);
        assert.equal(allowed.retryAfterMs, 0);
        assert.equal(typeof allowed.hit, 'string');
      }
      assert.deepEqual(await store.limits.hit(key, rule, { now: t + 3000 }), { allowed: false, retryAfterMs: 7000 });
      assert.deepEqual(await store.limits.hit(key, rule, { now: t + 3500 }), { allowed: false, retryAfterMs: 6500 }, 'a refused hit counts nothing');
      assert.equal((await store.limits.hit(newId('limit'), rule, { now: t + 3000 })).allowed, true, 'keys are independent');
      // the window slides: the first hit leaves it after 10 s, the second one 1 s later
      assert.equal((await store.limits.hit(key, rule, { now: t + 10_000 })).allowed, true);
      assert.deepEqual(await store.limits.hit(key, rule, { now: t + 10_200 }), { allowed: false, retryAfterMs: 800 });
      assert.equal((await store.limits.hit(key, rule, { now: t + 11_000 })).allowed, true);
    });

    it('limits: a window of thousands of hits slides exactly, and a hit forgotten in its middle is gone', async () => {
      const key = newId('limit');
      const rule = { max: 3000, windowMs: 10_000 };
      const t = Date.now();
      let allowed = 0;
      let middle: string | undefined;
      // 5 000 attempts, one every 2 ms: the first 3 000 fill the window
      for (let i = 0; i < 5000; i++) {
        const decision = await store.limits.hit(key, rule, { now: t + i * 2 });
        if (decision.allowed) allowed++;
        if (i === 1500) middle = decision.hit;
      }
      assert.equal(allowed, 3000);
      assert.equal((await store.limits.hit(key, rule, { now: t + 9_999 })).allowed, false);
      await store.limits.forget(key, middle!);
      assert.equal((await store.limits.hit(key, rule, { now: t + 9_999 })).allowed, true, 'the forgotten hit made room for one');
      assert.equal((await store.limits.hit(key, rule, { now: t + 9_999 })).allowed, false);
      // the window slides: at t + 10 s the first hit has left it, the second not yet
      assert.equal((await store.limits.hit(key, rule, { now: t + 10_000 })).allowed, true);
      assert.equal((await store.limits.hit(key, rule, { now: t + 10_001 })).allowed, false);
      let later = 0;
      for (let i = 0; i < 3001; i++) if ((await store.limits.hit(key, rule, { now: t + 30_000 + i })).allowed) later++;
      assert.equal(later, 3000, 'a window later, all of it is free again');
    });

    it('limits: forget takes one hit back, reset forgets every hit and the hold', async () => {
      const key = newId('limit');
      const rule = { max: 2, windowMs: 60_000 };
      const first = await store.limits.hit(key, rule);
      const second = await store.limits.hit(key, rule);
      assert.equal((await store.limits.hit(key, rule)).allowed, false);
      await store.limits.forget(key, second.hit!);
      await store.limits.forget(key, second.hit!);
      await store.limits.forget(newId('never-hit'), 'nothing');
      const third = await store.limits.hit(key, rule);
      assert.equal(third.allowed, true, 'one place freed');
      assert.notEqual(third.hit, first.hit);
      assert.equal((await store.limits.hit(key, rule)).allowed, false);
      assert.equal((await store.limits.hit(key, rule, { growUpToMs: 3600_000 })).allowed, false);
      await store.limits.reset(key);
      assert.equal((await store.limits.hit(key, rule)).allowed, true, 'hits and hold are gone');
    });

    it('limits: calls made together, none awaited, take effect in the order they were made', async () => {
      const key = newId('limit');
      const rule = { max: 1, windowMs: 60_000 };
      const decisions = await Promise.all([
        store.limits.hit(key, rule),
        store.limits.hit(key, rule),
        store.limits.reset(key).then(() => undefined),
        store.limits.batch([{ kind: 'hit', key, rule }]).then(([d]) => d),
        store.limits.hit(key, rule),
      ]);
      assert.deepEqual(
        decisions.map((d) => d?.allowed),
        [true, false, undefined, true, false],
      );
    });

    if (kind === 'sqlite') {
      it("limits (in memory): a turn's calls are answered together at its end, not at once", async () => {
        const key = newId('limit');
        const rule = { max: 5, windowMs: 60_000 };
        const answered: number[] = [];
        const calls = [0, 1, 2].map((i) => store.limits.hit(key, rule).then(() => answered.push(i)));
        // the microtasks of this turn run out before its end: nothing is answered yet
        for (let i = 0; i < 20; i++) await Promise.resolve();
        assert.deepEqual(answered, [], 'no call answered within the turn it was made in');
        await Promise.all(calls);
        assert.deepEqual(answered, [0, 1, 2], 'all of them answered, in order');
      });
    }

    it('limits: a refused hit with growUpToMs doubles the remaining wait, up to the cap; the hold outlasts the window', async () => {
      const key = newId('limit');
      const rule = { max: 1, windowMs: 1000 };
      const t = Date.now();
      assert.equal((await store.limits.hit(key, rule, { now: t })).allowed, true);
      assert.deepEqual(await store.limits.hit(key, rule, { now: t + 200 }), { allowed: false, retryAfterMs: 800 }, 'without growUpToMs the wait stays');
      assert.deepEqual(await store.limits.hit(key, rule, { now: t + 200, growUpToMs: 5000 }), { allowed: false, retryAfterMs: 1600 });
      // held until t + 1800: 1400 ms remain, doubled
      assert.deepEqual(await store.limits.hit(key, rule, { now: t + 400, growUpToMs: 5000 }), { allowed: false, retryAfterMs: 2800 });
      // held until t + 3200: 2700 ms remain, doubled past the cap
      assert.deepEqual(await store.limits.hit(key, rule, { now: t + 500, growUpToMs: 5000 }), { allowed: false, retryAfterMs: 5000 });
      // the window alone would allow this one; the hold (until t + 5500) does not
      assert.deepEqual(await store.limits.hit(key, rule, { now: t + 1500 }), { allowed: false, retryAfterMs: 4000 });
      assert.deepEqual(await store.limits.hit(key, rule, { now: t + 1500, growUpToMs: 3000 }), { allowed: false, retryAfterMs: 4000 }, 'a lower cap never shortens a wait');
      assert.equal((await store.limits.hit(key, rule, { now: t + 5600 })).allowed, true);
    });

    it('limits: of 40 concurrent hits exactly max are allowed, on one store object and (Redis) across two', async () => {
      const rule = { max: 7, windowMs: 60_000 };
      const single = newId('limit');
      const alone = await Promise.all(Array.from({ length: 40 }, () => store.limits.hit(single, rule)));
      assert.equal(alone.filter((d) => d.allowed).length, 7);
      assert.ok(alone.filter((d) => !d.allowed).every((d) => d.retryAfterMs > 0 && d.retryAfterMs <= 60_000));
      const second = await another();
      const shared = newId('limit');
      const split = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? store : second).limits.hit(shared, rule)));
      if (kind !== 'sqlite') {
        assert.equal(split.filter((d) => d.allowed).length, 7, 'replicas share the count');
      } else {
        // SQLite: the counters live in the memory of the process (here: of each store object)
        assert.equal(split.filter((d) => d.allowed).length, 14);
      }
    });

    /** `rounds` turns of `perTurn` hits with `reserve` from each of `stores`, 20 ms apart (the key busy throughout): the decisions. */
    async function busyHits(stores: Store[], key: string, rule: { max: number; windowMs: number }, rounds: number, perTurn: number) {
      const decisions = [];
      for (let r = 0; r < rounds; r++) {
        decisions.push(...(await Promise.all(stores.flatMap((s) => Array.from({ length: perTurn }, () => s.limits.hit(key, rule, { reserve: true }))))));
        await sleep(20);
      }
      return decisions;
    }

    it('limits: hits with reserve on a busy key never pass more than max a window, across replicas, and none is lost', async () => {
      // max 320: a share is at most 20 hits
      const rule = { max: 320, windowMs: 60_000 };
      const key = newId('limit');
      const second = await another();
      const decisions = await busyHits([store, second], key, rule, 30, 12);
      const allowed = decisions.filter((d) => d.allowed);
      assert.equal(new Set(allowed.map((d) => d.hit)).size, allowed.length, 'every allowed hit has an id of its own');
      assert.ok(decisions.filter((d) => !d.allowed).every((d) => d.retryAfterMs > 0 && d.retryAfterMs <= 60_000 + 100));
      if (kind === 'sqlite') {
        // each store object counts alone (the process's memory), exactly
        assert.equal(allowed.length, 640);
        return;
      }
      assert.ok(allowed.length <= 320, `${allowed.length} passed, more than max`);
      // refused while the other replica held a share unused: at most both shares
      assert.ok(allowed.length >= 320 - 2 * 20, `${allowed.length} passed`);
      // the shares end and give back what they did not use: the window then takes exactly max
      await sleep(300);
      let more = 0;
      while ((await store.limits.hit(key, rule)).allowed) more++;
      assert.equal(allowed.length + more, 320, 'exactly max in the window once the shares are back');
      // a hit taken back by forget (here one from a share) makes room for one
      await store.limits.forget(key, allowed[allowed.length - 1]!.hit!);
      assert.equal((await second.limits.hit(key, rule)).allowed, true);
      assert.equal((await second.limits.hit(key, rule)).allowed, false);
    });

    if (kind !== 'sqlite') {
      it('limits (Redis): a busy key reserved with reserve takes shares, dated ahead, and gives back what they leave unused', async () => {
        const redis = backend as RedisBackend;
        const rule = { max: 16_000, windowMs: 60_000 };
        const key = newId('limit');
        const zset = `${redis.keyPrefix}limit:{${sha256(key)}}`;
        const hits = (n: number, now: number) => Promise.all(Array.from({ length: n }, () => store.limits.hit(key, rule, { now, reserve: true })));
        // a key not busy yet: its 10 hits of one turn are counted as they come, dated now
        const t = Date.now();
        assert.ok((await hits(10, t)).every((d) => d.allowed));
        assert.deepEqual((await redis.inspector.zrange(zset, 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1), Array(10).fill(String(t)));
        // 10 hits in the last 100 ms: the next hit reserves 10 more ahead, dated when its share ends
        const [first] = await hits(1, t + 110);
        assert.equal(first!.allowed, true);
        const scores = (await redis.inspector.zrange(zset, 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number);
        assert.equal(scores.length, 21, 'the hits, and a share of 10 counted ahead');
        assert.equal(scores.filter((score) => score === t + 210).length, 11, 'the share (and the hit that asked for it) dated its end');
        // answered from the share: nothing more in Redis
        assert.ok((await hits(4, t + 120)).every((d) => d.allowed));
        assert.equal(await redis.inspector.zcard(zset), 21);
        // once the share has ended, the 6 hits it did not use are given back
        await sleep(Math.max(0, t + 210 - Date.now()) + 300);
        assert.equal(await redis.inspector.zcard(zset), 15);
        // a quiet key is counted hit by hit, each dated when it is made
        const quiet = newId('limit');
        const before = Date.now();
        assert.equal((await store.limits.hit(quiet, rule, { reserve: true })).allowed, true);
        const [, score] = await redis.inspector.zrange(`${redis.keyPrefix}limit:{${sha256(quiet)}}`, 0, -1, 'WITHSCORES');
        assert.ok(Number(score) >= before && Number(score) <= Date.now());
        assert.equal(await redis.inspector.zcard(`${redis.keyPrefix}limit:{${sha256(quiet)}}`), 1);
      });
    }

    it('limits: a batch takes its steps in order, each as its own method would, and answers a decision per hit', async () => {
      const rule = { max: 2, windowMs: 10_000 };
      const [a, b, c] = [newId('limit'), newId('limit'), newId('limit')];
      const t = Date.now();
      assert.deepEqual(await store.limits.batch([]), []);
      const first = await store.limits.batch(
        [
          { kind: 'hit', key: a, rule },
          { kind: 'hit', key: b, rule },
          { kind: 'hit', key: a, rule },
          { kind: 'hit', key: a, rule },
          { kind: 'reset', key: c },
        ],
        { now: t },
      );
      assert.equal(first.length, 5);
      assert.deepEqual(first.map((d) => d?.allowed), [true, true, true, false, undefined]);
      assert.deepEqual(first[3], { allowed: false, retryAfterMs: 10_000 }, 'a refusal inside a batch says how long, like hit');
      assert.equal(new Set(first.slice(0, 3).map((d) => d!.hit)).size, 3, 'every counted hit has an id of its own');
      // forget one of a's hits, reset b, and hit both again, in one batch: the steps run in order
      const second = await store.limits.batch(
        [
          { kind: 'forget', key: a, hit: first[0]!.hit! },
          { kind: 'reset', key: b },
          { kind: 'hit', key: a, rule, growUpToMs: 60_000 },
          { kind: 'hit', key: a, rule, growUpToMs: 60_000 },
          { kind: 'hit', key: b, rule },
        ],
        { now: t + 1000 },
      );
      assert.deepEqual(second.map((d) => d?.allowed), [undefined, undefined, true, false, true]);
      assert.deepEqual(second[3], { allowed: false, retryAfterMs: 18_000 }, 'growUpToMs grows the wait inside a batch too');
      assert.deepEqual(await store.limits.hit(a, rule, { now: t + 12_000 }), { allowed: false, retryAfterMs: 7000 }, 'the hold set in the batch holds');
      assert.equal((await store.limits.hit(b, rule, { now: t + 2000 })).allowed, true);
      assert.equal((await store.limits.hit(b, rule, { now: t + 2000 })).allowed, false, 'b was reset, then hit once');
      // what batch counted, the single methods see, and the other way round
      await store.limits.forget(b, second[4]!.hit!);
      assert.equal((await store.limits.batch([{ kind: 'hit', key: b, rule }], { now: t + 2000 }))[0]!.allowed, true);
    });

    it('limits: of 30 concurrent batches of two hits on one key exactly max hits are allowed', async () => {
      const rule = { max: 9, windowMs: 60_000 };
      const key = newId('limit');
      const second = await another();
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          (i % 2 === 0 || kind === 'sqlite' ? store : second).limits.batch([
            { kind: 'hit', key, rule },
            { kind: 'hit', key: newId('limit'), rule },
          ]),
        ),
      );
      assert.equal(answers.filter((d) => d[0]!.allowed).length, 9);
      assert.ok(answers.every((d) => d[1]!.allowed), 'the other keys are independent');
    });

    if (kind === 'redis' || kind === 'redis-sentinel') {
      it('limits: the batches asked for in one turn of the event loop go to Redis as one script call, each answered its own', async () => {
        const inspector = (backend as RedisBackend).inspector as Redis;
        const scriptCalls = async () => Number((await inspector.info('commandstats')).match(/cmdstat_evalsha:calls=(\d+)/)?.[1] ?? 0);
        const rule = { max: 5, windowMs: 60_000 };
        const [shared, own] = [newId('limit'), newId('limit')];
        await store.limits.hit(own, rule); // the script is loaded
        const before = await scriptCalls();
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.limits.batch([
              { kind: 'hit', key: shared, rule },
              { kind: 'hit', key: `${own}:${i}`, rule },
            ]),
          ),
        );
        const calls = (await scriptCalls()) - before;
        assert.ok(calls >= 1 && calls <= 2, `${calls} script calls for 20 batches`);
        assert.equal(answers.filter((a) => a[0]!.allowed).length, 5, 'the shared key: exactly max, in the order asked');
        assert.ok(answers.slice(0, 5).every((a) => a[0]!.allowed));
        assert.ok(answers.every((a) => a[1]!.allowed && a[1]!.hit !== a[0]!.hit));
      });
    }

    if (kind === 'sqlite') {
      it('creates the data directory 0700 and the database file 0600', () => {
        const { dataDir } = backend as SqliteBackend;
        assert.equal(statSync(dataDir).mode & 0o777, 0o700);
        assert.equal(statSync(join(dataDir, SQLITE_FILE_NAME)).mode & 0o777, 0o600);
      });

      it('sweep() deletes expired rows (and the timer runs it)', async () => {
        const { dataDir } = backend as SqliteBackend;
        const sqlite = await openSqliteStore({ dataDir, sweepIntervalMs: 50 });
        extra.push(sqlite);
        const raw = new Database(join(dataDir, SQLITE_FILE_NAME));
        try {
          const insert = raw.prepare(
            "INSERT INTO oidc_models (model, id_hash, payload, expires_at) VALUES ('AccessToken', ?, '{}', ?)",
          );
          const count = raw.prepare('SELECT COUNT(*) AS n FROM oidc_models WHERE id_hash = ?');
          const expiredId = newId('expired');
          insert.run(sha256(expiredId), Date.now() - 1000);
          assert.equal(await sqlite.model('AccessToken').find(expiredId), undefined, 'expired rows are never returned');
          const liveId = newId('live');
          await sqlite.model('AccessToken').upsert(liveId, tokenPayload('AccessToken', liveId), 60);

          assert.ok(sqlite.sweep() >= 1);
          assert.deepEqual(count.get(sha256(expiredId)), { n: 0 });
          assert.ok(await sqlite.model('AccessToken').find(liveId), 'live rows stay');

          const timedId = newId('expired');
          insert.run(sha256(timedId), Date.now() - 1000);
          await sleep(200);
          assert.deepEqual(count.get(sha256(timedId)), { n: 0 }, 'the timer swept it');
        } finally {
          raw.close();
        }
      });

      it('sweep() also prunes expired revocation entries', async () => {
        const sqlite = store as SqliteStore;
        const expired = tokenEvent('swept', -5);
        const live = tokenEvent('kept');
        await sqlite.revocations.append(expired);
        await sqlite.revocations.append(live);
        assert.ok(sqlite.sweep() >= 1);
        const stored = (await backend.storedRevocations()).join('\n');
        assert.ok(!stored.includes((expired as { jti: string }).jti));
        assert.ok(stored.includes((live as { jti: string }).jti));
      });

      it('sweep() also deletes expired clients and rotations', async () => {
        // Rows are written live (expiring in 150 ms) so the positive control cannot race the
        // 50 ms sweep timer of the store opened above, which runs this same sweep().
        const { dataDir } = backend as SqliteBackend;
        const sqlite = store as SqliteStore;
        const now = Date.now();
        const [oldClient, liveClient] = [newId('swept-client'), newId('kept-client')];
        await sqlite.clients.put({ clientId: oldClient, kind: 'dcr', createdAt: now }, now + 150);
        await sqlite.clients.put({ clientId: liveClient, kind: 'dcr', createdAt: now }, now + 60_000);
        const [oldKey, settledKey, liveKey] = [newId('a'), newId('b'), newId('c')].map(sha256) as [string, string, string];
        await sqlite.rotations.claim(oldKey, 0.15);
        await sqlite.rotations.claim(settledKey, 30);
        await sqlite.rotations.settle(settledKey, 'answer', 0.15);
        await sqlite.rotations.claim(liveKey, 30);
        const raw = new Database(join(dataDir, SQLITE_FILE_NAME));
        try {
          const clients = () => raw.prepare('SELECT client_id FROM clients WHERE client_id IN (?, ?) ORDER BY client_id').pluck().all(oldClient, liveClient);
          const rotations = () => raw.prepare('SELECT key FROM refresh_rotations WHERE key IN (?, ?, ?) ORDER BY key').pluck().all(oldKey, settledKey, liveKey);
          assert.deepEqual(clients(), [oldClient, liveClient].sort(), 'positive control: the rows are stored');
          assert.deepEqual(rotations(), [oldKey, settledKey, liveKey].sort());
          await sleep(Math.max(0, now + 200 - Date.now()));
          sqlite.sweep();
          assert.deepEqual(clients(), [liveClient]);
          assert.deepEqual(rotations(), [liveKey]);
          assert.deepEqual(await sqlite.rotations.get(liveKey), {});
        } finally {
          raw.close();
        }
      });

      it('sweep() also deletes expired grants', async () => {
        const { dataDir } = backend as SqliteBackend;
        const sqlite = store as SqliteStore;
        const now = Date.now();
        const [old, live] = [newId('swept-grant'), newId('kept-grant')];
        await sqlite.grants.put({ grantId: old, accountId: 'a', clientId: 'c', createdAt: now }, now + 150);
        await sqlite.grants.put({ grantId: live, accountId: 'a', clientId: 'c', createdAt: now }, now + 60_000);
        const raw = new Database(join(dataDir, SQLITE_FILE_NAME));
        try {
          const rows = () => raw.prepare('SELECT grant_id FROM grants WHERE grant_id IN (?, ?) ORDER BY grant_id').pluck().all(old, live);
          assert.deepEqual(rows(), [old, live].sort(), 'positive control: the rows are stored');
          await sleep(Math.max(0, now + 200 - Date.now()));
          sqlite.sweep();
          assert.deepEqual(rows(), [live]);
        } finally {
          raw.close();
        }
      });

      it('revocations appended by another process arrive, wake a waiting reader, and interleave in one order', async () => {
        const { dataDir } = backend as SqliteBackend;
        const start = await store.revocations.append(tokenEvent('marker'));
        const indexUrl = new URL('../../adapters/index.js', import.meta.url).href;
        const script = `
          const { openStore } = await import(process.argv[1]);
          const store = await openStore({ dataDir: process.argv[2], redisKeyPrefix: 'unused:' });
          const until = Math.floor(Date.now() / 1000) + 600;
          await new Promise((resolve) => setTimeout(resolve, 300));
          for (let i = 0; i < 30; i++) {
            await store.revocations.append({ type: 'grant', grantId: 'child-' + process.argv[3] + '-' + i, until });
            await new Promise((resolve) => setImmediate(resolve));
          }
          await store.close();
        `;
        const tag = randomBytes(4).toString('hex');
        const began = Date.now();
        const waiting = store.revocations.readAfter(start, 1000, 5000);
        const child = run(process.execPath, ['--input-type=module', '-e', script, indexUrl, dataDir, tag]);
        const first = await waiting;
        assert.ok(first.length >= 1, 'the wait ended with the child process\'s append');
        assert.ok(Date.now() - began < 4000, `answered after ${Date.now() - began} ms`);
        // meanwhile this process appends too
        const mine: RevocationEvent[] = [];
        for (let i = 0; i < 30; i++) {
          const event = tokenEvent(`parent${i}`);
          mine.push(event);
          await store.revocations.append(event);
          await sleep(2);
        }
        await child;

        const view = await store.revocations.readAfter(start, 1000);
        assertIncreasing(view.map((e) => e.id));
        const grants = view.flatMap((e) => (e.event.type === 'grant' ? [e.event.grantId] : []));
        assert.deepEqual(grants, Array.from({ length: 30 }, (_, i) => `child-${tag}-${i}`), 'each child append once, in order');
        assert.deepEqual(view.flatMap((e) => jtiOf(e) ?? []), mine.map((e) => (e as { jti: string }).jti));
        const reopened = await another();
        assert.deepEqual(await reopened.revocations.readAfter(start, 1000), view);
      });

      it('survives close and reopen, including data written by another process', async () => {
        const { dataDir } = backend as SqliteBackend;
        const mine = newId('before-close');
        await store.model('RefreshToken').upsert(mine, tokenPayload('RefreshToken', mine), 600);
        await store.settings.create('persisted', 'yes');
        await store.close();

        const theirs = newId('from-child');
        const indexUrl = new URL('../../adapters/index.js', import.meta.url).href;
        const script = `
          const { openStore } = await import(process.argv[1]);
          const store = await openStore({ dataDir: process.argv[2], redisKeyPrefix: 'unused:' });
          const id = process.argv[3];
          const now = Math.floor(Date.now() / 1000);
          await store.model('RefreshToken').upsert(id, { jti: id, kind: 'RefreshToken', iat: now, exp: now + 600 }, 600);
          await store.close();
        `;
        await run(process.execPath, ['--input-type=module', '-e', script, indexUrl, dataDir, theirs]);

        store = await backend.open();
        assert.equal((await store.model('RefreshToken').find(mine))?.jti, mine);
        assert.equal((await store.model('RefreshToken').find(theirs))?.jti, theirs);
        assert.deepEqual(await store.settings.get('persisted'), { value: 'yes', version: 1 });
      });
    }

    if (kind !== 'sqlite') {
      it('puts a TTL on every key except accounts and settings (permanent by design)', async () => {
        const { inspector, keys: keysOf } = backend as RedisBackend;
        const prefix = `ttl-${randomBytes(4).toString('hex')}:`;
        const scoped = await another(prefix);
        const grantId = newId('grant');
        const [s, d, a1, a2, r] = ['s', 'd', 'a1', 'a2', 'r'].map(newId) as [string, string, string, string, string];
        await scoped.model('Session').upsert(s, { jti: s, uid: newId('uid'), kind: 'Session' }, 60);
        await scoped.model('DeviceCode').upsert(d, tokenPayload('DeviceCode', d, { grantId, userCode: 'TTL-CODE' }), 60);
        await scoped.model('AccessToken').upsert(a1, tokenPayload('AccessToken', a1, { grantId }), 600);
        await scoped.model('AccessToken').upsert(a2, tokenPayload('AccessToken', a2, { grantId }), 30);
        await scoped.model('RefreshToken').upsert(r, tokenPayload('RefreshToken', r, { grantId }), 300);
        await scoped.model('RefreshToken').consume(r);
        await scoped.accounts.create(account('ttl-user'));
        await scoped.settings.create('ttl-setting', 'x');
        await scoped.settings.replace('ttl-setting', 1, 'y');
        await scoped.revocations.append(tokenEvent('ttl', 3600));
        await scoped.clients.put({ clientId: 'ttl-client', kind: 'dcr', createdAt: Date.now() }, Date.now() + 60_000);
        await scoped.rotations.claim(sha256('ttl-claimed'), 30);
        await scoped.rotations.claim(sha256('ttl-settled'), 30);
        await scoped.rotations.settle(sha256('ttl-settled'), 'sealed', 30);
        await scoped.grants.put({ grantId: grantId, accountId: 'ttl-account', clientId: 'ttl-client', createdAt: Date.now() }, Date.now() + 60_000);
        await scoped.limits.hit('ttl-limit', { max: 1, windowMs: 60_000 });
        await scoped.limits.hit('ttl-limit', { max: 1, windowMs: 60_000 }, { growUpToMs: 3600_000 });

        const keys = await keysOf(`${prefix}*`);
        const permanent = /^[^:]+:(account:|accountId:|accounts:|setting:)/;
        const seen = new Set<string>();
        for (const key of keys) {
          const kindOfKey = key.slice(prefix.length).split(':')[0] ?? '';
          seen.add(kindOfKey);
          const ttl = await inspector.ttl(key);
          if (permanent.test(key)) assert.equal(ttl, -1, `${kindOfKey} keys are permanent`);
          else assert.ok(ttl > 0, `${kindOfKey} key has a TTL (got ${ttl})`);
        }
        for (const expected of ['Session', 'DeviceCode', 'AccessToken', 'RefreshToken', 'grant', 'uid', 'userCode', 'account', 'accountId', 'accounts', 'setting', 'revocations', 'client', 'clients', 'rotation', 'grantRecord', 'grantRecords', 'grantsOfAccount', 'grantsOfClient', 'limit', 'limitHold']) {
          assert.ok(seen.has(expected), `saw a ${expected} key`);
        }
        const grantTtl = await inspector.pttl(`${prefix}grant:${grantId}`);
        assert.ok(grantTtl > 590_000, 'the grant set outlives its longest-lived member');
      });

      it('limits: one sorted set per hashed key, expiring with its window; the hold expires when it ends', async () => {
        const { inspector, keyPrefix } = backend as RedisBackend;
        const key = `signin:account:${newId('someone')}`;
        const rule = { max: 2, windowMs: 400 };
        await store.limits.hit(key, rule);
        await store.limits.hit(key, rule);
        const hits = `${keyPrefix}limit:{${sha256(key)}}`;
        const hold = `${keyPrefix}limitHold:{${sha256(key)}}`;
        assert.equal(await inspector.type(hits), 'zset');
        assert.equal(await inspector.zcard(hits), 2);
        const ttl = await inspector.pttl(hits);
        assert.ok(ttl > 0 && ttl <= 400, `the window's TTL (got ${ttl})`);
        assert.ok(!(await backend.storedText()).includes(key.split(':')[2]!), 'the key (here a username) is stored only hashed');
        const refused = await store.limits.hit(key, rule, { growUpToMs: 1000 });
        assert.equal(refused.allowed, false);
        const holdTtl = await inspector.pttl(hold);
        assert.ok(holdTtl > 400 && holdTtl <= refused.retryAfterMs, `the hold's TTL is its wait (got ${holdTtl} for ${refused.retryAfterMs})`);
        await sleep(450);
        assert.equal(await inspector.exists(hits), 0, 'the hits are gone with the window');
        assert.equal(await inspector.exists(hold), 1, 'the hold is not');
        assert.equal((await store.limits.hit(key, rule)).allowed, false);
        await sleep(Math.max(0, refused.retryAfterMs - 400));
        assert.equal(await inspector.exists(hold), 0);
        assert.equal((await store.limits.hit(key, rule)).allowed, true);
      });

      it('client directory: a record kept forever has no TTL, nor has the index while it holds one; list() drops dead members', async () => {
        const { inspector } = backend as RedisBackend;
        const prefix = `dir-${randomBytes(4).toString('hex')}:`;
        const scoped = await another(prefix);
        const index = `${prefix}clients`;
        const recordKey = (clientId: string) => `${prefix}client:${sha256(clientId)}`;
        const record = (clientId: string, kind: ClientRecord['kind'] = 'dcr'): ClientRecord => ({ clientId, kind, createdAt: Date.now() });

        await scoped.clients.put(record('static-one', 'static'));
        await scoped.clients.put(record('short'), Date.now() + 500);
        assert.equal(await inspector.pttl(recordKey('static-one')), -1, 'no expiresAt: no TTL');
        const shortTtl = await inspector.pttl(recordKey('short'));
        assert.ok(shortTtl > 0 && shortTtl <= 500, `got ${shortTtl}`);
        assert.equal(await inspector.pttl(index), -1, 'the index is permanent while it holds a permanent record');
        assert.equal(await inspector.zcard(index), 2);

        await sleep(600);
        assert.deepEqual((await scoped.clients.list()).map((c) => c.clientId), ['static-one']);
        assert.equal(await inspector.zcard(index), 1, 'list() dropped the expired member');
        // a member whose record vanished some other way (eviction) is skipped and dropped too
        await inspector.del(recordKey('static-one'));
        assert.deepEqual(await scoped.clients.list(), []);
        assert.equal(await inspector.exists(index), 0);

        // with only expiring records, the index lives as long as the longest-lived one
        const now = Date.now();
        await scoped.clients.put(record('a'), now + 30_000);
        await scoped.clients.put(record('b'), now + 90_000);
        await scoped.clients.put(record('c'), now + 60_000);
        const indexTtl = await inspector.pttl(index);
        assert.ok(indexTtl > 85_000 && indexTtl <= 90_000, `got ${indexTtl}`);
        // a permanent record makes it permanent, and the records themselves keep their own expiry
        await scoped.clients.put(record('b', 'static'));
        assert.equal(await inspector.pttl(index), -1);
        assert.equal(await inspector.pttl(recordKey('b')), -1);
        assert.ok((await inspector.pttl(recordKey('a'))) > 25_000);
        assert.equal(await scoped.clients.remove('b'), true);
        assert.equal(await inspector.zscore(index, sha256('b')), null);
        assert.deepEqual((await scoped.clients.list()).map((c) => c.clientId), ['a', 'c']);
      });

      it('grant directory: record and indexes expire with their longest-lived grant; list() drops dead members', async () => {
        const { inspector } = backend as RedisBackend;
        const prefix = `gdir-${randomBytes(4).toString('hex')}:`;
        const scoped = await another(prefix);
        const byAccount = `${prefix}grantsOfAccount:acct`;
        const byClient = `${prefix}grantsOfClient:${sha256('client')}`;
        const all = `${prefix}grantRecords`;
        const record = (grantId: string): GrantRecord => ({ grantId, accountId: 'acct', clientId: 'client', createdAt: Date.now() });
        const now = Date.now();
        await scoped.grants.put(record('a'), now + 30_000);
        await scoped.grants.put(record('b'), now + 90_000);
        await scoped.grants.put(record('c'), now + 60_000);
        const recordTtl = await inspector.pttl(`${prefix}grantRecord:a`);
        assert.ok(recordTtl > 25_000 && recordTtl <= 30_000, `got ${recordTtl}`);
        for (const index of [all, byAccount, byClient]) {
          const ttl = await inspector.pttl(index);
          assert.ok(ttl > 85_000 && ttl <= 90_000, `${index}: got ${ttl}`);
          assert.equal(await inspector.zcard(index), 3);
        }
        // a record gone without its index members (evicted): skipped and dropped from the index read
        await inspector.del(`${prefix}grantRecord:b`);
        assert.deepEqual((await scoped.grants.list({ accountId: 'acct' })).map((g) => g.grantId).sort(), ['a', 'c']);
        assert.equal(await inspector.zscore(byAccount, 'b'), null);
        // remove takes the grant out of every index
        assert.equal(await scoped.grants.remove('a'), true);
        for (const index of [all, byAccount, byClient]) assert.equal(await inspector.zscore(index, 'a'), null, index);
        // an expired member is dropped by score on read
        await scoped.grants.put(record('d'), Date.now() + 300);
        await sleep(400);
        assert.deepEqual((await scoped.grants.list({ clientId: 'client' })).map((g) => g.grantId), ['c']);
        assert.equal(await inspector.zscore(byClient, 'd'), null);
        assert.deepEqual((await scoped.grants.list()).map((g) => g.grantId), ['c']);
        assert.equal(await inspector.zscore(all, 'd'), null);
      });

      it('the revocation stream TTL covers the latest until plus a day and is only ever extended', async () => {
        const { inspector } = backend as RedisBackend;
        const prefix = `rttl-${randomBytes(4).toString('hex')}:`;
        const scoped = await another(prefix);
        const key = `${prefix}revocations`;
        const day = 86_400_000;
        await scoped.revocations.append(tokenEvent('expired', -100));
        let ttl = await inspector.pttl(key);
        assert.ok(ttl > day - 10_000 && ttl <= day, `an expired event keeps the key a day (got ${ttl})`);
        await scoped.revocations.append(tokenEvent('long', 7200));
        ttl = await inspector.pttl(key);
        assert.ok(ttl > 7_200_000 + day - 10_000 && ttl <= 7_200_000 + day + 1000, `got ${ttl}`);
        await scoped.revocations.append(tokenEvent('short', 60));
        assert.ok((await inspector.pttl(key)) > 7_200_000 + day - 10_000, 'a shorter-lived event does not shorten it');
        // blocking reads do not hold up the shared connection
        const waiting = scoped.revocations.readAfter('99999999999999-0', 10, 1500);
        const began = Date.now();
        await scoped.settings.create('while-blocked', 'x');
        await scoped.ping();
        assert.ok(Date.now() - began < 1200, 'commands on the store run while a read blocks (for 1.5 s)');
        assert.deepEqual(await waiting, []);
      });

    }

    if (kind === 'redis-cluster') {
      it('spreads the keys over every master: only keys used together share a slot', async () => {
        const { keys: keysOf, inspector } = backend as RedisBackend;
        const prefix = `spread-${randomBytes(4).toString('hex')}:`;
        const scoped = await another(prefix);
        for (let i = 0; i < 30; i++) {
          const id = newId('spread');
          await scoped.model('AccessToken').upsert(id, tokenPayload('AccessToken', id, { grantId: newId('grant') }), 60);
        }
        const perMaster = await Promise.all((inspector as Cluster).nodes('master').map((n) => n.keys(`${prefix}*`)));
        assert.equal(perMaster.length, 3);
        for (const keys of perMaster) assert.ok(keys.length >= 5, `every master holds some of the 60 keys (got ${perMaster.map((k) => k.length).join(', ')})`);
        assert.equal((await keysOf(`${prefix}*`)).length, 60);
      });
    }

    if (kind === 'redis') {
      it('ping() rejects promptly with a readable error when Redis is down', async () => {
        const server = await startRedis();
        const transient = await openStore({ dataDir: '/nonexistent', redis: { mode: 'standalone', url: server.url }, redisKeyPrefix: 'p:' });
        try {
          await transient.ping();
          await server.stop();
          const started = Date.now();
          await assert.rejects(transient.ping(), (err: unknown) => {
            assert.ok(err instanceof StoreError);
            assert.match(err.message, /Redis at redis:\/\/127\.0\.0\.1:\d+/);
            return true;
          });
          assert.ok(Date.now() - started < 3000);
        } finally {
          await transient.close();
        }
      });

      it('the same store object keeps working across a redis-server restart (data persisted)', async () => {
        const server = (backend as RedisBackend).server!;
        const id = newId('persist');
        await store.model('AccessToken').upsert(id, tokenPayload('AccessToken', id), 600);
        await store.accounts.create(account('restart-user'));
        await server.restart();

        assert.equal((await store.model('AccessToken').find(id))?.jti, id);
        assert.equal((await store.accounts.findByUsername('restart-user'))?.username, 'restart-user');
        const after = newId('after-restart');
        await store.model('AccessToken').upsert(after, tokenPayload('AccessToken', after), 600);
        assert.equal((await store.model('AccessToken').find(after))?.jti, after);
        await store.model('AccessToken').consume(after); // scripts reload after the cache was lost
        await store.ping();
      });
    }
  });
}

/** How openStore reports a store it cannot open. */
export function openStoreFailureSuite(): void {
  describe('openStore failures', () => {
    it('names the SQLite file and the cause', async () => {
      const root = mkdtempSync(join(tmpdir(), 'mcp-authz-bad-'));
      try {
        const file = join(root, 'not-a-dir');
        writeFileSync(file, '');
        const dataDir = join(file, 'data');
        await assert.rejects(openStore({ dataDir, redisKeyPrefix: 'x:' }), (err: unknown) => {
          assert.ok(err instanceof StoreError);
          assert.equal(err.message.startsWith(`cannot open SQLite store at ${join(dataDir, SQLITE_FILE_NAME)}: ENOTDIR`), true, err.message);
          return true;
        });
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });

    it('names the Redis URL with its password redacted, and the cause', async () => {
      const port = await freePort();
      const started = Date.now();
      await assert.rejects(
        openStore({ dataDir: '/nonexistent', redis: { mode: 'standalone', url: `redis://alice:hunter2@127.0.0.1:${port}/0` }, redisKeyPrefix: 'x:' }),
        (err: unknown) => {
          assert.ok(err instanceof StoreError);
          assert.ok(err.message.startsWith(`cannot reach Redis at redis://***@127.0.0.1:${port}/0: `), err.message);
          assert.match(err.message, /ECONNREFUSED/);
          assert.ok(!err.message.includes('hunter2') && !err.message.includes('alice'));
          return true;
        },
      );
      assert.ok(Date.now() - started < 5000);
    });
  });
}
