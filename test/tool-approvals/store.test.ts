/**
 * The tool approval store (adapters/contract.ts `ToolApprovalStore`) on SQLite and on a real
 * Redis: lookups, the state changes and their atomicity (of concurrent callers, on two store
 * objects sharing the data, exactly one wins), expiry and the once-per-session memory.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore } from '../../adapters/index.js';
import { toolApprovalKey, type Store, type ToolApprovalRecord } from '../../adapters/contract.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

const NOTES = 'https://notes.example.com/mcp';

function newId(label: string): string {
  return `${label}-${randomBytes(12).toString('base64url')}`;
}

function digest(): string {
  return `sha-256:${randomBytes(32).toString('base64url')}`;
}

function pending(extra: Partial<ToolApprovalRecord> = {}): ToolApprovalRecord {
  const now = Date.now();
  return {
    id: newId('appr'),
    resource: NOTES,
    tool: 'delete_note',
    argumentsDigest: digest(),
    summary: 'Delete the note "groceries"',
    clientId: 'web-app',
    grantId: newId('grant'),
    accountId: newId('acct'),
    status: 'pending',
    createdAt: now,
    expiresAt: now + 60_000,
    ...extra,
  };
}

for (const kind of ['sqlite', 'redis'] as const) {
  describe(`tool approvals on ${kind}`, () => {
    let redis: RedisServer | undefined;
    let dataDir: string;
    let store: Store;
    let other: Store;

    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-approvals-'));
      if (kind === 'redis') redis = await startRedis();
      const open = () =>
        openStore(redis ? { dataDir, redis: { mode: 'standalone', url: redis.url }, redisKeyPrefix: 'approvals:' } : { dataDir, redisKeyPrefix: 'unused:' });
      store = await open();
      other = await open();
    });

    after(async () => {
      await other?.close();
      await store?.close();
      await redis?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('creates and gets a record as given; an unknown id is undefined', async () => {
      const record = pending({ secondFactor: false });
      await store.toolApprovals.create(record);
      assert.deepEqual(await store.toolApprovals.get(record.id), record);
      assert.deepEqual(await other.toolApprovals.get(record.id), record, 'another store object sees it');
      assert.equal(await store.toolApprovals.get(newId('missing')), undefined);

      const machine = pending({ clientId: 'nightly-report' });
      delete machine.grantId;
      delete machine.accountId;
      await store.toolApprovals.create(machine);
      assert.deepEqual(await store.toolApprovals.get(machine.id), machine, 'absent grant and account stay absent');
    });

    it('findOpen: the newest pending, approved or denied record of the key, resource, tool and digest', async () => {
      const first = pending({ createdAt: Date.now() - 2000 });
      const key = toolApprovalKey(first);
      await store.toolApprovals.create(first);
      const { resource, tool, argumentsDigest } = first;
      assert.equal((await store.toolApprovals.findOpen(key, resource, tool, argumentsDigest))?.id, first.id);

      const second = pending({ grantId: first.grantId!, accountId: first.accountId!, argumentsDigest, createdAt: Date.now() - 1000 });
      await store.toolApprovals.create(second);
      assert.equal((await store.toolApprovals.findOpen(key, resource, tool, argumentsDigest))?.id, second.id, 'the newest');

      // another tool, digest, resource or key finds nothing
      assert.equal(await store.toolApprovals.findOpen(key, resource, 'other_tool', argumentsDigest), undefined);
      assert.equal(await store.toolApprovals.findOpen(key, resource, tool, digest()), undefined);
      assert.equal(await store.toolApprovals.findOpen(key, 'https://calendar.example.com/mcp', tool, argumentsDigest), undefined);
      assert.equal(await store.toolApprovals.findOpen(newId('grant'), resource, tool, argumentsDigest), undefined);

      // closed and redeemed are not open; denied and approved are
      await store.toolApprovals.close(second.id);
      assert.equal((await store.toolApprovals.findOpen(key, resource, tool, argumentsDigest))?.id, first.id);
      assert.equal(await store.toolApprovals.decide(first.id, 'denied', { at: Date.now(), decidedBy: 'person' }), true);
      assert.equal((await store.toolApprovals.findOpen(key, resource, tool, argumentsDigest))?.status, 'denied');
      await store.toolApprovals.close(first.id);
      assert.equal(await store.toolApprovals.findOpen(key, resource, tool, argumentsDigest), undefined);

      const third = pending({ grantId: first.grantId!, argumentsDigest });
      await store.toolApprovals.create(third);
      await store.toolApprovals.decide(third.id, 'approved', { at: Date.now(), decidedBy: 'person' });
      assert.equal((await other.toolApprovals.findOpen(key, resource, tool, argumentsDigest))?.status, 'approved');
      assert.equal(await store.toolApprovals.redeem(third.id, Date.now()), true);
      assert.equal(await store.toolApprovals.findOpen(key, resource, tool, argumentsDigest), undefined);

      // a token without a person: the client's key
      const machine = pending({ clientId: 'nightly-report' });
      delete machine.grantId;
      delete machine.accountId;
      await store.toolApprovals.create(machine);
      assert.equal((await store.toolApprovals.findOpen('client:nightly-report', resource, tool, machine.argumentsDigest))?.id, machine.id);
    });

    it('listPending: the account’s pending, unexpired requests, newest first, at most 50', async () => {
      const accountId = newId('acct');
      const now = Date.now();
      const older = pending({ accountId, createdAt: now - 3000 });
      const newer = pending({ accountId, createdAt: now - 1000 });
      const expired = pending({ accountId, createdAt: now - 5000, expiresAt: now - 1 });
      const decided = pending({ accountId, createdAt: now - 2000 });
      const someoneElse = pending();
      for (const r of [older, newer, expired, decided, someoneElse]) await store.toolApprovals.create(r);
      await store.toolApprovals.decide(decided.id, 'approved', { at: now, decidedBy: 'person' });
      assert.deepEqual((await store.toolApprovals.listPending(accountId, Date.now())).map((r) => r.id), [newer.id, older.id]);
      assert.deepEqual((await other.toolApprovals.listPending(accountId, Date.now())).map((r) => r.id), [newer.id, older.id]);
      assert.deepEqual(await store.toolApprovals.listPending(accountId, now + 120_000), [], 'all expired by then');

      const many = newId('acct');
      for (let i = 0; i < 55; i++) await store.toolApprovals.create(pending({ accountId: many, createdAt: now - i }));
      const listed = await store.toolApprovals.listPending(many, Date.now());
      assert.equal(listed.length, 50);
      assert.deepEqual(listed.map((r) => r.createdAt), Array.from({ length: 50 }, (_, i) => now - i));
    });

    it('decide: only a pending, unexpired record, only once, recording who and when', async () => {
      const record = pending();
      await store.toolApprovals.create(record);
      const at = Date.now();
      assert.equal(await store.toolApprovals.decide(record.id, 'approved', { at, decidedBy: 'person', secondFactor: true }), true);
      assert.deepEqual(await store.toolApprovals.get(record.id), { ...record, status: 'approved', decidedBy: 'person', decidedAt: at, secondFactor: true });
      assert.equal(await store.toolApprovals.decide(record.id, 'denied', { at, decidedBy: 'person' }), false, 'decided already');
      assert.equal((await store.toolApprovals.get(record.id))?.status, 'approved');

      const late = pending({ expiresAt: Date.now() + 200 });
      await store.toolApprovals.create(late);
      assert.equal(await store.toolApprovals.decide(late.id, 'approved', { at: late.expiresAt, decidedBy: 'person' }), false, 'not at its deadline');
      await sleep(250);
      assert.equal(await store.toolApprovals.decide(late.id, 'approved', { at: Date.now(), decidedBy: 'person' }), false, 'not after it');
      assert.equal((await store.toolApprovals.get(late.id))?.status, 'pending');

      assert.equal(await store.toolApprovals.decide(newId('missing'), 'approved', { at: Date.now(), decidedBy: 'person' }), false);
    });

    it('decide: of concurrent deciders on two store objects, exactly one wins', async () => {
      const record = pending();
      await store.toolApprovals.create(record);
      const at = Date.now();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? other : store).toolApprovals.decide(record.id, i % 3 ? 'approved' : 'denied', { at, decidedBy: 'person' }),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1);
    });

    it('redeem: only an approved record, and of concurrent callers exactly one', async () => {
      const record = pending();
      await store.toolApprovals.create(record);
      assert.equal(await store.toolApprovals.redeem(record.id, Date.now()), false, 'pending is not redeemable');
      await store.toolApprovals.decide(record.id, 'approved', { at: Date.now(), decidedBy: 'person' });
      const at = Date.now();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? other : store).toolApprovals.redeem(record.id, at)));
      assert.equal(results.filter(Boolean).length, 1);
      const redeemed = await store.toolApprovals.get(record.id);
      assert.equal(redeemed?.status, 'redeemed');
      assert.equal(redeemed?.redeemedAt, at);

      const denied = pending();
      await store.toolApprovals.create(denied);
      await store.toolApprovals.decide(denied.id, 'denied', { at: Date.now(), decidedBy: 'person' });
      assert.equal(await store.toolApprovals.redeem(denied.id, Date.now()), false);
      assert.equal(await store.toolApprovals.redeem(newId('missing'), Date.now()), false);

      // created approved by a policy
      const policy = pending({ status: 'approved', decidedBy: 'policy', decidedAt: Date.now() });
      await store.toolApprovals.create(policy);
      assert.equal(await store.toolApprovals.redeem(policy.id, Date.now()), true);
    });

    it('close: any record, once (of concurrent closers exactly one); an unknown id is a no-op', async () => {
      const record = pending();
      await store.toolApprovals.create(record);
      assert.equal(await store.toolApprovals.close(record.id), true);
      assert.equal((await store.toolApprovals.get(record.id))?.status, 'closed');
      assert.equal(await store.toolApprovals.close(record.id), false, 'closed already');
      assert.equal(await store.toolApprovals.decide(record.id, 'approved', { at: Date.now(), decidedBy: 'person' }), false);

      const denied = pending();
      await store.toolApprovals.create(denied);
      await store.toolApprovals.decide(denied.id, 'denied', { at: Date.now(), decidedBy: 'person' });
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? other : store).toolApprovals.close(denied.id)));
      assert.equal(results.filter(Boolean).length, 1);

      const unknown = newId('missing');
      assert.equal(await store.toolApprovals.close(unknown), false);
      assert.equal(await store.toolApprovals.get(unknown), undefined);
    });

    it('approvedBefore: a person’s approval of the tool on the grant, also once redeemed or closed; not a refusal or a policy', async () => {
      const grantId = newId('grant');
      const approve = pending({ grantId });
      await store.toolApprovals.create(approve);
      assert.equal(await store.toolApprovals.approvedBefore(grantId, NOTES, approve.tool), false, 'pending');
      await store.toolApprovals.decide(approve.id, 'approved', { at: Date.now(), decidedBy: 'person' });
      assert.equal(await store.toolApprovals.approvedBefore(grantId, NOTES, approve.tool), true);
      assert.equal(await other.toolApprovals.approvedBefore(grantId, NOTES, approve.tool), true);
      await store.toolApprovals.redeem(approve.id, Date.now());
      assert.equal(await store.toolApprovals.approvedBefore(grantId, NOTES, approve.tool), true, 'redeemed');
      await store.toolApprovals.close(approve.id);
      assert.equal(await store.toolApprovals.approvedBefore(grantId, NOTES, approve.tool), true, 'closed after approval');
      assert.equal(await store.toolApprovals.approvedBefore(grantId, NOTES, 'other_tool'), false, 'another tool');
      assert.equal(await store.toolApprovals.approvedBefore(grantId, 'https://calendar.example.com/mcp', approve.tool), false, 'another resource');
      assert.equal(await store.toolApprovals.approvedBefore(newId('grant'), NOTES, approve.tool), false, 'another grant');

      const refusedGrant = newId('grant');
      const refuse = pending({ grantId: refusedGrant });
      await store.toolApprovals.create(refuse);
      await store.toolApprovals.decide(refuse.id, 'denied', { at: Date.now(), decidedBy: 'person' });
      await store.toolApprovals.close(refuse.id);
      assert.equal(await store.toolApprovals.approvedBefore(refusedGrant, NOTES, refuse.tool), false, 'refused');

      const policyGrant = newId('grant');
      await store.toolApprovals.create(pending({ grantId: policyGrant, status: 'approved', decidedBy: 'policy', decidedAt: Date.now() }));
      assert.equal(await store.toolApprovals.approvedBefore(policyGrant, NOTES, 'delete_note'), false, 'approved by policy');
    });

    it('records are dropped a day past their deadline', async () => {
      const old = pending({ createdAt: Date.now() - 90_000_000, expiresAt: Date.now() - 86_400_000 - 1000 });
      await store.toolApprovals.create(old).catch(() => {});
      assert.equal(await store.toolApprovals.get(old.id), undefined);
      assert.equal(await store.toolApprovals.findOpen(toolApprovalKey(old), old.resource, old.tool, old.argumentsDigest), undefined);
    });
  });
}
