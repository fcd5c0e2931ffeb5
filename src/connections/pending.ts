/**
 * What a redirect-based connection keeps between sending the browser upstream and the
 * answer coming back: which interaction it is for, and the values that bind the answer to
 * this request (OIDC state, nonce and PKCE verifier; SAML request id). Kept in the store (so
 * the answer may reach another replica) under a random key, short-lived and single-use:
 * `take` consumes it, so a replayed answer finds nothing.
 */
import { randomBytes } from 'node:crypto';
import { AlreadyConsumedError, type Store } from '../../adapters/contract.js';

const MODEL = 'UpstreamSignIn';

export interface PendingRecord {
  /** the interaction uid */
  uid: string;
  connection: string;
  /** the driver's own values */
  values: Record<string, string>;
}

export class PendingSignIns {
  constructor(
    private readonly store: Store,
    /** seconds an upstream sign-in may take */
    private readonly ttl: number,
  ) {}

  /** Keeps `record` under a new random key (or `key` when the protocol fixes it, e.g. a SAML request id). */
  async begin(record: PendingRecord, key: string = randomBytes(32).toString('base64url')): Promise<string> {
    await this.store.model(MODEL).upsert(key, { ...record, values: { ...record.values } } as never, this.ttl);
    return key;
  }

  /** The record under `key`, once: a second call (a replay) gets undefined. */
  async take(key: string): Promise<PendingRecord | undefined> {
    if (typeof key !== 'string' || key.length === 0 || key.length > 512) return undefined;
    const model = this.store.model(MODEL);
    const found = (await model.find(key)) as (Partial<PendingRecord> & { consumed?: unknown }) | undefined;
    if (!found || found.consumed !== undefined) return undefined;
    try {
      await model.consume(key);
    } catch (err) {
      if (err instanceof AlreadyConsumedError) return undefined;
      throw err;
    }
    await model.destroy(key);
    if (typeof found.uid !== 'string' || typeof found.connection !== 'string' || typeof found.values !== 'object' || found.values === null) return undefined;
    return { uid: found.uid, connection: found.connection, values: found.values as Record<string, string> };
  }

  /** True while `key` is pending (not taken, not expired), without taking it. */
  async has(key: string): Promise<boolean> {
    const found = (await this.store.model(MODEL).find(key)) as { consumed?: unknown } | undefined;
    return found !== undefined && found.consumed === undefined;
  }
}
