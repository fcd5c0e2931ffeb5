/**
 * Tool-call approvals in Redis: a hash per approval (`<prefix>toolApproval:<id>`), two sorted
 * sets of ids — the approvals of one (key, resource, tool, digest), for `findOpen`, and one
 * account's, for `listPending` — and, for the once-per-session policy, a string per
 * (grant, resource, tool) a person approved. Every key expires a day past the `expiresAt` of
 * the (latest) approval it concerns.
 *
 * State changes (`decide`, `redeem`, `close`) are single-key Lua scripts on the approval's
 * hash, so of concurrent callers on any replica exactly one wins. The indexes are written
 * before the record (a live record is always found); members whose record is gone or can no
 * longer be what the index is for (closed or redeemed; decided, for the pending list) are
 * dropped on read.
 */
import {
  StoreError,
  TOOL_APPROVAL_RETENTION_MS,
  toolApprovalKey,
  type ToolApprovalRecord,
  type ToolApprovalStatus,
  type ToolApprovalStore,
} from '../contract.js';
import { hgetallEach, type RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import { define, DROP_STALE_MEMBERS, INDEX_ADD, type Arg, type ScriptCall } from './scripts.js';

/** KEYS[1] approval; ARGV[1] drop time (epoch ms), ARGV[2..] field/value pairs. 1 created, 0 the id exists. */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`;

/**
 * KEYS[1] approval; ARGV[1] decision, ARGV[2] at (epoch ms), ARGV[3] decidedBy, ARGV[4]
 * secondFactor ('1', '0' or '' for none). 1 decided; 0 not pending, expired or missing.
 */
const DECIDE = `
local f = redis.call('HMGET', KEYS[1], 'status', 'expiresAt')
if f[1] ~= 'pending' then return 0 end
if tonumber(f[2]) <= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'decidedBy', ARGV[3], 'decidedAt', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'secondFactor', ARGV[4]) end
return 1
`;

/** KEYS[1] approval; ARGV[1] at (epoch ms). 1 approved → redeemed; 0 otherwise. */
const REDEEM = `
if redis.call('HGET', KEYS[1], 'status') ~= 'approved' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'redeemed', 'redeemedAt', ARGV[1])
return 1
`;

/** KEYS[1] a flag; ARGV[1] ttl ms. Sets it to live at least that long (never shortens a longer life). */
const FLAG = `
local ttl = tonumber(ARGV[1])
if ttl <= 0 then return 0 end
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('SET', KEYS[1], '1', 'PX', ttl) end
return 1
`;

/** KEYS[1] approval. 1 closed now; 0 missing (never creates a hash without a TTL) or closed already. */
const CLOSE = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'closed' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'closed')
return 1
`;

const STATUSES: readonly string[] = ['pending', 'approved', 'denied', 'redeemed', 'closed'] satisfies ToolApprovalStatus[];
const OPEN: readonly string[] = ['pending', 'approved', 'denied'];
const PENDING_LIMIT = 50;

function number(value: string | undefined, id: string): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n)) throw new StoreError(`the stored tool approval "${id}" cannot be read`);
  return n;
}

function toRecord(fields: Record<string, string>): ToolApprovalRecord | undefined {
  const { id, resource, tool, argumentsDigest, summary, clientId, grantId, accountId, status, decidedBy, secondFactor, decidedAt, redeemedAt } = fields;
  if (id === undefined) return undefined;
  if (
    resource === undefined ||
    tool === undefined ||
    argumentsDigest === undefined ||
    summary === undefined ||
    clientId === undefined ||
    status === undefined ||
    !STATUSES.includes(status) ||
    (decidedBy !== undefined && decidedBy !== 'person' && decidedBy !== 'policy')
  ) {
    throw new StoreError(`the stored tool approval "${id}" cannot be read`);
  }
  return {
    id,
    resource,
    tool,
    argumentsDigest,
    summary,
    clientId,
    ...(grantId === undefined ? {} : { grantId }),
    ...(accountId === undefined ? {} : { accountId }),
    status: status as ToolApprovalStatus,
    ...(decidedBy === undefined ? {} : { decidedBy: decidedBy as 'person' | 'policy' }),
    ...(secondFactor === undefined ? {} : { secondFactor: secondFactor === '1' }),
    createdAt: number(fields.createdAt, id),
    expiresAt: number(fields.expiresAt, id),
    ...(decidedAt === undefined ? {} : { decidedAt: number(decidedAt, id) }),
    ...(redeemedAt === undefined ? {} : { redeemedAt: number(redeemedAt, id) }),
  };
}

function fieldsOf(record: ToolApprovalRecord): Arg[] {
  const fields: Arg[] = [
    'id', record.id,
    'resource', record.resource,
    'tool', record.tool,
    'argumentsDigest', record.argumentsDigest,
    'summary', record.summary,
    'clientId', record.clientId,
    'status', record.status,
    'createdAt', record.createdAt,
    'expiresAt', record.expiresAt,
  ];
  if (record.grantId !== undefined) fields.push('grantId', record.grantId);
  if (record.accountId !== undefined) fields.push('accountId', record.accountId);
  if (record.decidedBy !== undefined) fields.push('decidedBy', record.decidedBy);
  if (record.secondFactor !== undefined) fields.push('secondFactor', record.secondFactor ? '1' : '0');
  if (record.decidedAt !== undefined) fields.push('decidedAt', record.decidedAt);
  if (record.redeemedAt !== undefined) fields.push('redeemedAt', record.redeemedAt);
  return fields;
}

/** newest first; ties by id, so every replica picks the same one */
function newestFirst(a: ToolApprovalRecord, b: ToolApprovalRecord): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

export class RedisToolApprovalStore implements ToolApprovalStore {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;
  readonly #create: ScriptCall;
  readonly #decide: ScriptCall;
  readonly #redeem: ScriptCall;
  readonly #close: ScriptCall;
  readonly #flag: ScriptCall;
  readonly #index: ScriptCall;
  readonly #unindex: ScriptCall;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    this.#create = define(redis, 'mcpAuthzToolApprovalCreate', CREATE, 1);
    this.#decide = define(redis, 'mcpAuthzToolApprovalDecide', DECIDE, 1);
    this.#redeem = define(redis, 'mcpAuthzToolApprovalRedeem', REDEEM, 1);
    this.#close = define(redis, 'mcpAuthzToolApprovalClose', CLOSE, 1);
    this.#flag = define(redis, 'mcpAuthzToolApprovalFlag', FLAG, 1);
    this.#index = define(redis, 'mcpAuthzIndexAdd', INDEX_ADD, 1);
    this.#unindex = define(redis, 'mcpAuthzDropStaleMembers', DROP_STALE_MEMBERS, 1);
  }

  async create(record: ToolApprovalRecord): Promise<void> {
    const k = this.#keys;
    const dropAt = Math.ceil(record.expiresAt + TOOL_APPROVAL_RETENTION_MS);
    const now = Date.now();
    const indexes = [k.toolApprovalsFor(toolApprovalKey(record), record.resource, record.tool, record.argumentsDigest)];
    if (record.accountId !== undefined && record.status === 'pending') indexes.push(k.toolApprovalsOfAccount(record.accountId));
    await Promise.all(indexes.map((index) => this.#index(index, record.id, dropAt, now)));
    if ((await this.#create(k.toolApproval(record.id), dropAt, ...fieldsOf(record))) !== 1) {
      throw new StoreError(`a tool approval with id "${record.id}" already exists`);
    }
    if (record.decidedBy === 'person' && (record.status === 'approved' || record.status === 'redeemed')) await this.#markApproved(record);
  }

  async get(id: string): Promise<ToolApprovalRecord | undefined> {
    return toRecord(await this.#redis.hgetall(this.#keys.toolApproval(id)));
  }

  async findOpen(key: string, resource: string, tool: string, argumentsDigest: string): Promise<ToolApprovalRecord | undefined> {
    const records = await this.#members(this.#keys.toolApprovalsFor(key, resource, tool, argumentsDigest), (r) => OPEN.includes(r.status));
    return records
      .filter((r) => toolApprovalKey(r) === key && r.resource === resource && r.tool === tool && r.argumentsDigest === argumentsDigest)
      .sort(newestFirst)[0];
  }

  async listPending(accountId: string, now: number): Promise<ToolApprovalRecord[]> {
    const records = await this.#members(this.#keys.toolApprovalsOfAccount(accountId), (r) => r.status === 'pending');
    return records
      .filter((r) => r.accountId === accountId && r.expiresAt > now)
      .sort(newestFirst)
      .slice(0, PENDING_LIMIT);
  }

  async decide(id: string, decision: 'approved' | 'denied', change: { at: number; decidedBy: 'person' | 'policy'; secondFactor?: boolean }): Promise<boolean> {
    const secondFactor = change.secondFactor === undefined ? '' : change.secondFactor ? '1' : '0';
    const decided = (await this.#decide(this.#keys.toolApproval(id), decision, Math.floor(change.at), change.decidedBy, secondFactor)) === 1;
    if (!decided) return false;
    const record = await this.get(id);
    if (record?.accountId !== undefined) await this.#redis.zrem(this.#keys.toolApprovalsOfAccount(record.accountId), id);
    if (record && decision === 'approved' && change.decidedBy === 'person') await this.#markApproved(record);
    return true;
  }

  async redeem(id: string, at: number): Promise<boolean> {
    return (await this.#redeem(this.#keys.toolApproval(id), Math.floor(at))) === 1;
  }

  async close(id: string): Promise<boolean> {
    return (await this.#close(this.#keys.toolApproval(id))) === 1;
  }

  async approvedBefore(grantId: string, resource: string, tool: string): Promise<boolean> {
    return (await this.#redis.exists(this.#keys.toolApprovedOnGrant(grantId, resource, tool))) === 1;
  }

  /** Remembers a person's approval of the record's tool on its grant, as long as the record is kept. */
  async #markApproved(record: ToolApprovalRecord): Promise<void> {
    if (record.grantId === undefined) return;
    const key = this.#keys.toolApprovedOnGrant(record.grantId, record.resource, record.tool);
    const dropAt = Math.ceil(record.expiresAt + TOOL_APPROVAL_RETENTION_MS);
    await this.#flag(key, dropAt - Date.now());
  }

  /** The live records an index names that still `belong` in it; the others leave the index. */
  async #members(index: string, belong: (record: ToolApprovalRecord) => boolean): Promise<ToolApprovalRecord[]> {
    await this.#redis.zremrangebyscore(index, '-inf', Date.now());
    const scored = await this.#redis.zrange(index, 0, -1, 'WITHSCORES');
    const ids = scored.filter((_, i) => i % 2 === 0);
    const replies = await hgetallEach(this.#redis, ids.map((id) => this.#keys.toolApproval(id)));
    const records: ToolApprovalRecord[] = [];
    const stale: string[] = [];
    replies.forEach((fields, i) => {
      const record = toRecord(fields);
      if (record && belong(record)) records.push(record);
      // closed and redeemed are final, and so is any decision for the pending list: safe to drop
      else stale.push(scored[2 * i]!, scored[2 * i + 1]!);
    });
    if (stale.length > 0) await this.#unindex(index, ...stale);
    return records;
  }
}
