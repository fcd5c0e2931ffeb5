/**
 * Rate counters of the SQLite store, held in memory.
 *
 * A SQLite deployment is one server process (CLI processes sharing the file never limit
 * anything), so its counters live in that process: nothing is written to the file for a
 * request that is only counted, and a restart starts every count afresh. Each key keeps its
 * recent hits (at most `max` of them, in arrays whose spent front is dropped now and then, so a
 * hit costs the same whatever `max` is) as numbers only — their times and sequence numbers, no
 * object or string a hit, so a key with a high limit holding a minute of hits at thousands a
 * second gives the garbage collector nothing to trace — and its hold; keys with neither are forgotten by a sweep
 * run at most once a minute on use, so memory stays bounded by the recently active keys.
 * Each call (a batch too) runs without yielding, so it is atomic within the process.
 *
 * Calls are answered at the end of the event loop's turn, all of that turn's together and in
 * the order they came, as a store across the network answers them a round trip later: the
 * requests read in one turn then go on through the rest of their work side by side, the same
 * code for one after another, instead of each running from its first byte to its answer before
 * the next begins. On one core that costs less CPU a request (a token: 364 → 321 µs measured
 * side by side, docs/performance.md); the wait is one turn.
 */
import type { RateCounters, RateDecision, RateRule, RateStep } from '../contract.js';

const SWEEP_EVERY_MS = 60_000;

interface Entry {
  /** times of the hits in the window, oldest first, from `head` on (earlier slots are spent) */
  at: number[];
  /** the hits' sequence numbers (a hit's id is its number as a string), parallel to `at` */
  ids: number[];
  head: number;
  windowMs: number;
  /** epoch ms until which the key is held (0: no hold) */
  holdUntil: number;
}

/** Spent slots are dropped from the front once there are this many (and half the array): amortised O(1) per hit. */
const COMPACT_AT = 1024;

export class MemoryRateCounters implements RateCounters {
  readonly #entries = new Map<string, Entry>();
  #lastSweep = 0;
  #sequence = 0;

  /** calls waiting for the end of this turn, in order */
  #queue: (() => void)[] = [];

  // `reserve` changes nothing here: one process, every hit counted as it comes
  hit(key: string, rule: RateRule, options: { growUpToMs?: number; now?: number; reserve?: boolean } = {}): Promise<RateDecision> {
    return this.#atTurnEnd(() => {
      const now = options.now ?? Date.now();
      this.#sweep(now);
      return this.#hit(key, rule, options.growUpToMs, now);
    });
  }

  forget(key: string, hit: string): Promise<void> {
    return this.#atTurnEnd(() => this.#forget(key, hit));
  }

  reset(key: string): Promise<void> {
    return this.#atTurnEnd(() => void this.#entries.delete(key));
  }

  batch(steps: readonly RateStep[], options: { now?: number } = {}): Promise<(RateDecision | undefined)[]> {
    return this.#atTurnEnd(() => {
      const now = options.now ?? Date.now();
      this.#sweep(now);
      return steps.map((step) => {
        if (step.kind === 'hit') return this.#hit(step.key, step.rule, step.growUpToMs, now);
        if (step.kind === 'forget') this.#forget(step.key, step.hit);
        else this.#entries.delete(step.key);
        return undefined;
      });
    });
  }

  /** `work`, done with the other calls of this turn at its end (one immediate for all of them), its result or error answered. */
  #atTurnEnd<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const job = () => {
        try {
          resolve(work());
        } catch (err) {
          reject(err as Error);
        }
      };
      if (this.#queue.push(job) === 1) setImmediate(() => this.#runQueued());
    });
  }

  #runQueued(): void {
    const jobs = this.#queue;
    this.#queue = [];
    for (const job of jobs) job();
  }

  #hit(key: string, rule: RateRule, growUpToMs: number | undefined, now: number): RateDecision {
    const entry = this.#entry(key, rule, now);
    let wait = waitOf(entry, rule, now);
    if (wait > 0) {
      if (growUpToMs !== undefined && growUpToMs > 0) {
        wait = Math.max(wait, Math.min(wait * 2, growUpToMs));
        entry.holdUntil = now + wait;
      }
      return { allowed: false, retryAfterMs: wait };
    }
    const id = ++this.#sequence;
    const last = entry.at.length - 1;
    if (last >= entry.head && entry.at[last]! > now) {
      // a hit dated before the newest (callers passing `now`): keep the window in time order
      const at = entry.at.findIndex((t, i) => i >= entry.head && t > now);
      entry.at.splice(at, 0, now);
      entry.ids.splice(at, 0, id);
    } else {
      entry.at.push(now);
      entry.ids.push(id);
    }
    // more than `max` in the window never matters: the oldest beyond it are spent
    if (entry.at.length - entry.head > rule.max) entry.head = entry.at.length - rule.max;
    compact(entry);
    return { allowed: true, retryAfterMs: 0, hit: String(id) };
  }

  #forget(key: string, hit: string): void {
    const entry = this.#entries.get(key);
    const id = Number(hit);
    // not one of ours (ids are whole numbers from 1): nothing to forget
    if (!entry || !Number.isSafeInteger(id) || id < 1) return;
    const at = entry.ids.lastIndexOf(id);
    if (at < entry.head) return;
    entry.at.splice(at, 1);
    entry.ids.splice(at, 1);
  }

  /** The key's entry, its expired hits spent (created when missing). */
  #entry(key: string, rule: RateRule, now: number): Entry {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { at: [], ids: [], head: 0, windowMs: rule.windowMs, holdUntil: 0 };
      this.#entries.set(key, entry);
    }
    entry.windowMs = rule.windowMs;
    while (entry.head < entry.at.length && entry.at[entry.head]! <= now - rule.windowMs) entry.head++;
    return entry;
  }

  #sweep(now: number): void {
    if (now - this.#lastSweep < SWEEP_EVERY_MS) return;
    this.#lastSweep = now;
    for (const [key, entry] of this.#entries) {
      const newest = entry.at.length > entry.head ? entry.at[entry.at.length - 1]! : -Infinity;
      if (entry.holdUntil <= now && newest <= now - entry.windowMs) this.#entries.delete(key);
    }
  }
}

function compact(entry: Entry): void {
  if (entry.head < COMPACT_AT || entry.head * 2 < entry.at.length) return;
  entry.at = entry.at.slice(entry.head);
  entry.ids = entry.ids.slice(entry.head);
  entry.head = 0;
}

/** Milliseconds until the key may go on (0: now): the longer of the window's wait and the hold. */
function waitOf(entry: Entry, rule: RateRule, now: number): number {
  const count = entry.at.length - entry.head;
  const windowWait = count >= rule.max ? entry.at[entry.at.length - rule.max]! + rule.windowMs - now : 0;
  return Math.max(0, windowWait, entry.holdUntil - now);
}
