/**
 * One follower of the shared revocation log per server process: it reads new entries as
 * they are appended (by any replica or the CLI) and fans them out to this process's
 * feed connections, and keeps the set of what is revoked for JWT introspection.
 * One reader per process, not per connection: a blocking read per connection would
 * serialise on Redis and multiply polling on SQLite.
 */
import { EventEmitter } from 'node:events';
import type { RevocationEntry, RevocationLog } from '../../adapters/contract.js';
import type { Logger } from '../observability/logger.js';
// the verifier's own bookkeeping: the server may use the verifier, never the reverse
import { RevokedSet } from '../verifier/revocation.js';
import { revokedEntry } from './feed-events.js';

const BATCH = 500;
const WAIT_MS = 1000;
/** how often entries that no longer matter are dropped, from the log and from memory */
const PRUNE_MS = 10 * 60 * 1000;

export class RevocationHub {
  readonly revoked = new RevokedSet();
  readonly #events = new EventEmitter();
  #lastId: string | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #onEntries: ((count: number) => void) | undefined;

  constructor(
    private readonly log: RevocationLog,
    private readonly logger: Logger,
  ) {
    this.#events.setMaxListeners(0);
  }

  /** Reads what is retained (to know what is revoked now), then follows new entries. */
  async start(): Promise<void> {
    if (this.#running) return;
    for (;;) {
      const batch = await this.log.readAfter(this.#lastId, BATCH);
      this.#apply(batch, false);
      if (batch.length < BATCH) break;
    }
    this.#running = true;
    this.#loop = this.#follow();
    this.#pruneTimer = setInterval(() => void this.#prune(), PRUNE_MS);
    this.#pruneTimer.unref();
  }

  async #prune(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    this.revoked.prune(now);
    await this.log.prune(now).catch((err: Error) => this.logger.warn({ err: { message: err.message } }, 'could not prune the revocation log'));
  }

  async #follow(): Promise<void> {
    let failures = 0;
    while (this.#running) {
      try {
        const batch = await this.log.readAfter(this.#lastId, BATCH, WAIT_MS);
        this.#apply(batch, true);
        failures = 0;
      } catch (err) {
        if (!this.#running) break;
        failures++;
        if (failures === 1) this.logger.error({ err: { message: (err as Error).message } }, 'revocation log unreadable; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** failures)));
      }
    }
  }

  #apply(entries: RevocationEntry[], broadcast: boolean): void {
    for (const entry of entries) {
      this.revoked.add(revokedEntry(entry.event));
      this.#lastId = entry.id;
      if (broadcast) this.#events.emit('entry', entry);
    }
    if (broadcast && entries.length > 0) this.#onEntries?.(entries.length);
  }

  /** Calls `count` with the number of entries read each time new ones are sent to the subscribers (metrics). */
  countEntries(count: (n: number) => void): void {
    this.#onEntries = count;
  }

  /** Open feed streams of this process. */
  get subscribers(): number {
    return this.#events.listenerCount('entry');
  }

  /** Calls `listener` for every entry appended from now on; returns the unsubscribe. */
  subscribe(listener: (entry: RevocationEntry) => void): () => void {
    this.#events.on('entry', listener);
    return () => this.#events.off('entry', listener);
  }

  /** Stops following the log and ends every feed stream of this process. */
  async stop(): Promise<void> {
    if (this.#pruneTimer) clearInterval(this.#pruneTimer);
    this.#running = false;
    this.#events.emit('stop');
    await this.#loop;
  }

  onStop(listener: () => void): () => void {
    this.#events.on('stop', listener);
    return () => this.#events.off('stop', listener);
  }
}
