/**
 * The revocation log over the `revocations` table (migration 2).
 *
 * Ids are the table's AUTOINCREMENT key, as decimal strings. SQLite serialises writers,
 * and each append is one autocommit INSERT, so ids become visible in increasing order
 * across every connection and process sharing the file: a reader that has seen id N
 * will never later find a committed id below N.
 *
 * Waiting (`readAfter` with `waitMs`) polls `max(id)` every {@link POLL_MS} ms, because
 * another process (the CLI, a second server) may append to the same file and there is
 * no cross-process notification in SQLite; appends made through this object wake
 * waiters at once. `max(id)` on an INTEGER PRIMARY KEY is a single b-tree descent.
 */
import type Database from 'better-sqlite3';
import type { RevocationEntry, RevocationEvent, RevocationLog } from '../contract.js';
import { decodeRevocationEvent } from '../payload.js';

/** how often a waiting `readAfter` looks for appends made by other connections */
export const POLL_MS = 50;

/** the most entries one read returns, whatever `limit` asks */
const MAX_BATCH = 100_000;

/** the largest SQLite integer: an afterId beyond it is clamped (nothing follows it) */
const MAX_ID = 9223372036854775807n;

interface Row {
  id: bigint;
  event: string;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** `afterId` as a key to read after: 0 (from the start) when absent or not a decimal string. */
function parseAfterId(afterId: string | undefined): bigint {
  if (afterId === undefined || !/^\d+$/.test(afterId)) return 0n;
  const id = BigInt(afterId);
  return id > MAX_ID ? MAX_ID : id;
}

export class SqliteRevocationLog implements RevocationLog {
  readonly #insert: Database.Statement<[string, number]>;
  readonly #select: Database.Statement<[bigint, number, number], Row>;
  readonly #top: Database.Statement<[], bigint>;
  readonly #prune: Database.Statement<[number]>;
  /** one consistent snapshot: the live rows after `after`, and (when none) how far the table reaches */
  readonly #read: (after: bigint, now: number, limit: number) => { rows: Row[]; top: bigint };
  /** wakes pending waits early (an append through this object, or close) */
  readonly #wakers = new Set<() => void>();
  #closed = false;

  constructor(db: Database.Database) {
    this.#insert = db.prepare('INSERT INTO revocations (event, until) VALUES (?, ?)');
    this.#select = db
      .prepare<[bigint, number, number], Row>(
        'SELECT id, event FROM revocations WHERE id > ? AND until > ? ORDER BY id LIMIT ?',
      )
      .safeIntegers(true);
    this.#top = db.prepare<[], bigint>('SELECT coalesce(max(id), 0) FROM revocations').pluck().safeIntegers(true);
    this.#prune = db.prepare('DELETE FROM revocations WHERE until <= ?');
    this.#read = db.transaction((after: bigint, now: number, limit: number) => {
      const rows = this.#select.all(after, now, limit);
      return { rows, top: rows.length > 0 ? 0n : (this.#top.get() ?? 0n) };
    });
  }

  async append(event: RevocationEvent): Promise<string> {
    if (typeof event.until !== 'number' || !Number.isFinite(event.until)) {
      throw new TypeError('a revocation event needs a finite `until` (epoch seconds)');
    }
    const id = this.#insert.run(JSON.stringify(event), event.until).lastInsertRowid;
    for (const wake of [...this.#wakers]) wake();
    return String(id);
  }

  async readAfter(afterId: string | undefined, limit: number, waitMs?: number): Promise<RevocationEntry[]> {
    const max = Math.min(Math.floor(limit), MAX_BATCH);
    if (!(max >= 1) || this.#closed) return [];
    let after = parseAfterId(afterId);
    const first = this.#readLive(after, max);
    if (first.entries.length > 0 || waitMs === undefined || !(waitMs > 0)) return first.entries;

    // Every row up to `top` is expired (expiry only moves forward), so only later ids matter.
    if (first.top > after) after = first.top;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return [];
      await this.#pause(Math.min(POLL_MS, remaining));
      if (this.#closed) return [];
      if ((this.#top.get() ?? 0n) <= after) continue;
      const next = this.#readLive(after, max);
      if (next.entries.length > 0) return next.entries;
      if (next.top > after) after = next.top;
    }
  }

  async prune(nowSecondsValue: number): Promise<void> {
    this.pruneNow(nowSecondsValue);
  }

  /** Deletes entries whose `until` has passed; returns how many (the sweeper's entry point). */
  pruneNow(now: number = nowSeconds()): number {
    return this.#prune.run(now).changes;
  }

  /** Ends pending waits (they answer []) and refuses further reads; called before the database closes. */
  close(): void {
    this.#closed = true;
    for (const wake of [...this.#wakers]) wake();
  }

  /**
   * Up to `limit` live entries after `after`, and the highest id known to hold nothing
   * live for this read. A row that does not decode is skipped (and read past), so the
   * batch is filled from the rows after it.
   */
  #readLive(after: bigint, limit: number): { entries: RevocationEntry[]; top: bigint } {
    const entries: RevocationEntry[] = [];
    const now = nowSeconds();
    let cursor = after;
    for (;;) {
      const want = limit - entries.length;
      const { rows, top } = this.#read(cursor, now, want);
      if (rows.length === 0) return { entries, top: top > cursor ? top : cursor };
      for (const row of rows) {
        const event = decodeRevocationEvent(row.event);
        if (event) entries.push({ id: String(row.id), event });
        cursor = row.id;
      }
      if (rows.length < want || entries.length >= limit) return { entries, top: cursor };
    }
  }

  /** Resolves after `ms`, or earlier on an in-process append or close. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }
}
