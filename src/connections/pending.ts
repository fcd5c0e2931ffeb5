/**
 * What a redirect-based connection keeps between sending the browser upstream and the
 * answer coming back: which interaction it is for, and the values that bind the answer to
 * this request (OIDC state, nonce and PKCE verifier; SAML request id) — and the hand-off of a
 * checked answer to the interaction (src/interactions/connection-sign-in.ts). Kept in the
 * store (so the answer may reach another replica) under a random key, short-lived and
 * single-use: `take` consumes it, so a replayed answer finds nothing.
 */
import type { Store } from '../../adapters/contract.js';
import { SingleUseRecords } from '../../adapters/single-use-records.js';

export interface PendingRecord {
  /** the interaction uid */
  uid: string;
  connection: string;
  /** the driver's own values */
  values: Record<string, string>;
}

export class PendingSignIns {
  readonly #records: SingleUseRecords<PendingRecord>;

  /** `ttl`: seconds an upstream sign-in may take */
  constructor(store: Store, ttl: number) {
    this.#records = new SingleUseRecords<PendingRecord>(store, 'UpstreamSignIn', ttl);
  }

  /** Keeps `record` under a new random key (or `key` when the protocol fixes it, e.g. a SAML request id). */
  async begin(record: PendingRecord, key: string = SingleUseRecords.newKey()): Promise<string> {
    await this.#records.put(key, { uid: record.uid, connection: record.connection, values: { ...record.values } });
    return key;
  }

  /** The record under `key`, once: a second call (a replay) gets undefined. */
  async take(key: string): Promise<PendingRecord | undefined> {
    const found = await this.#records.take(key);
    if (!found || typeof found.uid !== 'string' || typeof found.connection !== 'string' || typeof found.values !== 'object' || found.values === null) return undefined;
    return found;
  }

  /** True while `key` is pending (not taken, not expired), without taking it. */
  async has(key: string): Promise<boolean> {
    return (await this.#records.peek(key)) !== undefined;
  }
}
