/**
 * Assertion IDs already used, kept in the store (so every replica knows them) until the
 * assertion would expire anyway: the same assertion is never accepted twice.
 *
 * Defence in depth: every assertion we accept also names, in its signed subject
 * confirmation, a pending request of ours that the first answer consumes (./request-ledger.ts),
 * so a replay is already refused there; this check still holds should an identity provider
 * ever answer one request with an assertion it issued before.
 */
import { createHash } from 'node:crypto';
import type { Store } from '../../../adapters/contract.js';

const MODEL = 'SamlAssertion';
/** the longest an assertion ID is remembered, whatever the assertion says */
const MAX_SECONDS = 24 * 3600;

export class SeenAssertions {
  constructor(
    private readonly store: Store,
    private readonly connection: string,
  ) {}

  /** True the first time `assertionId` is presented; false when it was seen before. */
  async remember(assertionId: string, validUntilMs: number, now = Date.now()): Promise<boolean> {
    const key = createHash('sha256').update(`${this.connection}\n${assertionId}`).digest('base64url');
    const model = this.store.model(MODEL);
    if (await model.find(key)) return false;
    const seconds = Math.min(MAX_SECONDS, Math.max(1, Math.ceil((validUntilMs - now) / 1000)));
    await model.upsert(key, { connection: this.connection }, seconds);
    return true;
  }
}
