/**
 * Rate counters of the SQLite store, held in memory.
 *
 * A SQLite deployment is one server process (CLI processes sharing the file never limit
 * anything), so its counters live in that process: nothing is written to the file for a
 * request that is only counted, and a restart starts every count afresh. Each key keeps its
 * recent hits (at most `max` of them) and its hold; keys with neither are forgotten by a sweep
 * run at most once a minute on use, so memory stays bounded by the recently active keys.
 * Each call runs without yielding, so it is atomic within the process.
 */
import type { RateCounters, RateDecision, RateRule } from '../contract.js';

const SWEEP_EVERY_MS = 60_000;

interface Hit {
  at: number;
  id: string;
}

interface Entry {
  /** oldest first */
  hits: Hit[];
  windowMs: number;
  /** epoch ms until which the key is held (0: no hold) */
  holdUntil: number;
}

export class MemoryRateCounters implements RateCounters {
  readonly #entries = new Map<string, Entry>();
  #lastSweep = 0;
  #sequence = 0;

  async hit(key: string, rule: RateRule, options: { growUpToMs?: number; now?: number } = {}): Promise<RateDecision> {
    const now = options.now ?? Date.now();
    this.#sweep(now);
    const entry = this.#entry(key, rule, now);
    let wait = waitOf(entry, rule, now);
    if (wait > 0) {
      if (options.growUpToMs !== undefined && options.growUpToMs > 0) {
        wait = Math.max(wait, Math.min(wait * 2, options.growUpToMs));
        entry.holdUntil = now + wait;
      }
      return { allowed: false, retryAfterMs: wait };
    }
    const id = `${now}:${++this.#sequence}`;
    entry.hits.push({ at: now, id });
    if (entry.hits.length > 1 && entry.hits.at(-2)!.at > now) entry.hits.sort((a, b) => a.at - b.at);
    if (entry.hits.length > rule.max) entry.hits = entry.hits.slice(-rule.max);
    return { allowed: true, retryAfterMs: 0, hit: id };
  }

  async forget(key: string, hit: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (entry) entry.hits = entry.hits.filter((h) => h.id !== hit);
  }

  async reset(key: string): Promise<void> {
    this.#entries.delete(key);
  }

  /** The key's entry, its expired hits dropped (created when missing). */
  #entry(key: string, rule: RateRule, now: number): Entry {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { hits: [], windowMs: rule.windowMs, holdUntil: 0 };
      this.#entries.set(key, entry);
    }
    entry.windowMs = rule.windowMs;
    entry.hits = entry.hits.filter((h) => h.at > now - rule.windowMs);
    return entry;
  }

  #sweep(now: number): void {
    if (now - this.#lastSweep < SWEEP_EVERY_MS) return;
    this.#lastSweep = now;
    for (const [key, entry] of this.#entries) {
      if (entry.holdUntil <= now && entry.hits.every((h) => h.at <= now - entry.windowMs)) this.#entries.delete(key);
    }
  }
}

/** Milliseconds until the key may go on (0: now): the longer of the window's wait and the hold. */
function waitOf(entry: Entry, rule: RateRule, now: number): number {
  const count = entry.hits.length;
  const windowWait = count >= rule.max ? entry.hits[count - rule.max]!.at + rule.windowMs - now : 0;
  return Math.max(0, windowWait, entry.holdUntil - now);
}
