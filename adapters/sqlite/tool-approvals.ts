/**
 * Tool-call approvals over the `tool_approvals` table (migration 6).
 *
 * Every state change is one conditional UPDATE (`… WHERE status = 'pending' AND expires_at > ?`),
 * so of concurrent callers — in this process or another one sharing the file — exactly one
 * sees `changes === 1`. A row is ignored once past `keep_until` (a day after `expires_at`) and
 * deleted by the sweeper.
 */
import type Database from 'better-sqlite3';
import {
  StoreError,
  TOOL_APPROVAL_RETENTION_MS,
  toolApprovalKey,
  type ToolApprovalRecord,
  type ToolApprovalStatus,
  type ToolApprovalStore,
} from '../contract.js';

interface ApprovalRow {
  id: string;
  resource: string;
  tool: string;
  arguments_digest: string;
  summary: string;
  client_id: string;
  grant_id: string | null;
  account_id: string | null;
  status: string;
  decided_by: string | null;
  second_factor: number | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  redeemed_at: number | null;
}

const COLUMNS =
  'id, resource, tool, arguments_digest, summary, client_id, grant_id, account_id, status, decided_by, second_factor, created_at, expires_at, decided_at, redeemed_at';
const STATUSES: readonly string[] = ['pending', 'approved', 'denied', 'redeemed', 'closed'] satisfies ToolApprovalStatus[];
/** at most this many pending requests are listed for one account */
const PENDING_LIMIT = 50;

function toRecord(row: ApprovalRow): ToolApprovalRecord {
  if (!STATUSES.includes(row.status) || (row.decided_by !== null && row.decided_by !== 'person' && row.decided_by !== 'policy')) {
    throw new StoreError(`the stored tool approval "${row.id}" cannot be read`);
  }
  return {
    id: row.id,
    resource: row.resource,
    tool: row.tool,
    argumentsDigest: row.arguments_digest,
    summary: row.summary,
    clientId: row.client_id,
    ...(row.grant_id === null ? {} : { grantId: row.grant_id }),
    ...(row.account_id === null ? {} : { accountId: row.account_id }),
    status: row.status as ToolApprovalStatus,
    ...(row.decided_by === null ? {} : { decidedBy: row.decided_by as 'person' | 'policy' }),
    ...(row.second_factor === null ? {} : { secondFactor: row.second_factor === 1 }),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    ...(row.decided_at === null ? {} : { decidedAt: row.decided_at }),
    ...(row.redeemed_at === null ? {} : { redeemedAt: row.redeemed_at }),
  };
}

type Params = Record<string, string | number | null>;

export class SqliteToolApprovalStore implements ToolApprovalStore {
  readonly #create: Database.Statement<[Params]>;
  readonly #get: Database.Statement<[string, number], ApprovalRow>;
  readonly #findOpen: Database.Statement<[Params], ApprovalRow>;
  readonly #listPending: Database.Statement<[Params], ApprovalRow>;
  readonly #decide: Database.Statement<[Params]>;
  readonly #redeem: Database.Statement<[number, string, number]>;
  readonly #close: Database.Statement<[string, number]>;
  readonly #approvedBefore: Database.Statement<[Params], { found: number }>;
  readonly #sweep: Database.Statement<[number]>;

  constructor(db: Database.Database) {
    this.#create = db.prepare(`INSERT INTO tool_approvals (${COLUMNS}, lookup_key, approved, keep_until)
      VALUES (@id, @resource, @tool, @argumentsDigest, @summary, @clientId, @grantId, @accountId, @status, @decidedBy,
        @secondFactor, @createdAt, @expiresAt, @decidedAt, @redeemedAt, @lookupKey, @approved, @keepUntil)`);
    this.#get = db.prepare(`SELECT ${COLUMNS} FROM tool_approvals WHERE id = ? AND keep_until > ?`);
    this.#findOpen = db.prepare(`SELECT ${COLUMNS} FROM tool_approvals
      WHERE lookup_key = @key AND resource = @resource AND tool = @tool AND arguments_digest = @digest
        AND status IN ('pending', 'approved', 'denied') AND keep_until > @now
      ORDER BY created_at DESC, rowid DESC LIMIT 1`);
    this.#listPending = db.prepare(`SELECT ${COLUMNS} FROM tool_approvals
      WHERE account_id = @accountId AND status = 'pending' AND expires_at > @now
      ORDER BY created_at DESC, rowid DESC LIMIT ${PENDING_LIMIT}`);
    this.#decide = db.prepare(`UPDATE tool_approvals
      SET status = @status, decided_by = @decidedBy, decided_at = @at, second_factor = @secondFactor, approved = @approved
      WHERE id = @id AND status = 'pending' AND expires_at > @at`);
    this.#redeem = db.prepare(`UPDATE tool_approvals SET status = 'redeemed', redeemed_at = ?
      WHERE id = ? AND status = 'approved' AND keep_until > ?`);
    this.#close = db.prepare(`UPDATE tool_approvals SET status = 'closed' WHERE id = ? AND status != 'closed' AND keep_until > ?`);
    this.#approvedBefore = db.prepare(`SELECT 1 AS found FROM tool_approvals
      WHERE grant_id = @grantId AND resource = @resource AND tool = @tool AND approved = 1 AND decided_by = 'person'
        AND keep_until > @now LIMIT 1`);
    this.#sweep = db.prepare('DELETE FROM tool_approvals WHERE keep_until <= ?');
  }

  async create(record: ToolApprovalRecord): Promise<void> {
    this.#create.run({
      id: record.id,
      resource: record.resource,
      tool: record.tool,
      argumentsDigest: record.argumentsDigest,
      summary: record.summary,
      clientId: record.clientId,
      grantId: record.grantId ?? null,
      accountId: record.accountId ?? null,
      status: record.status,
      decidedBy: record.decidedBy ?? null,
      secondFactor: record.secondFactor === undefined ? null : Number(record.secondFactor),
      createdAt: record.createdAt,
      expiresAt: record.expiresAt,
      decidedAt: record.decidedAt ?? null,
      redeemedAt: record.redeemedAt ?? null,
      lookupKey: toolApprovalKey(record),
      approved: record.status === 'approved' || record.status === 'redeemed' ? 1 : 0,
      keepUntil: record.expiresAt + TOOL_APPROVAL_RETENTION_MS,
    });
  }

  async get(id: string): Promise<ToolApprovalRecord | undefined> {
    const row = this.#get.get(id, Date.now());
    return row && toRecord(row);
  }

  async findOpen(key: string, resource: string, tool: string, argumentsDigest: string): Promise<ToolApprovalRecord | undefined> {
    const row = this.#findOpen.get({ key, resource, tool, digest: argumentsDigest, now: Date.now() });
    return row && toRecord(row);
  }

  async listPending(accountId: string, now: number): Promise<ToolApprovalRecord[]> {
    return this.#listPending.all({ accountId, now }).map(toRecord);
  }

  async decide(id: string, decision: 'approved' | 'denied', change: { at: number; decidedBy: 'person' | 'policy'; secondFactor?: boolean }): Promise<boolean> {
    const result = this.#decide.run({
      id,
      status: decision,
      decidedBy: change.decidedBy,
      at: change.at,
      secondFactor: change.secondFactor === undefined ? null : Number(change.secondFactor),
      approved: decision === 'approved' ? 1 : 0,
    });
    return result.changes === 1;
  }

  async redeem(id: string, at: number): Promise<boolean> {
    return this.#redeem.run(at, id, Date.now()).changes === 1;
  }

  async close(id: string): Promise<boolean> {
    return this.#close.run(id, Date.now()).changes === 1;
  }

  async approvedBefore(grantId: string, resource: string, tool: string): Promise<boolean> {
    return this.#approvedBefore.get({ grantId, resource, tool, now: Date.now() }) !== undefined;
  }

  /** Deletes records kept past their day; returns how many (the sweeper's entry point). */
  sweepNow(now: number = Date.now()): number {
    return this.#sweep.run(now).changes;
  }
}
