/**
 * Keeps each grant's last use (store.grants) current: the token endpoint reports every
 * successful request on a grant (code exchange, refresh, device code), and at most one write
 * per grant per {@link TOUCH_INTERVAL_MS} reaches the store, so a busy client costs nothing.
 */
import type { Store } from '../../adapters/contract.js';
import type { Logger } from '../observability/logger.js';

/** At most one directory write per grant per this long. */
export const TOUCH_INTERVAL_MS = 30_000;
/** Bound on the in-memory throttle table. */
const MAX_TRACKED = 10_000;

export interface GrantUsage {
  /** A token request on this grant just succeeded. Never rejects. */
  used(grantId: string): Promise<void>;
}

export function grantUsage(store: Store, log: Logger, intervalMs = TOUCH_INTERVAL_MS): GrantUsage {
  const lastWrite = new Map<string, number>();
  return {
    async used(grantId) {
      const now = Date.now();
      if (now - (lastWrite.get(grantId) ?? -Infinity) < intervalMs) return;
      if (lastWrite.size >= MAX_TRACKED) lastWrite.clear();
      lastWrite.set(grantId, now);
      await store.grants.touch(grantId, now).catch((err: Error) => log.warn({ grantId, err: err.message }, 'could not record the use of a grant'));
    },
  };
}
