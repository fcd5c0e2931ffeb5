/**
 * node-saml's `cacheProvider` backed by our store (./pending.ts), so that the answer to an
 * AuthnRequest may reach any replica: the request id an AuthnRequest carries is kept with
 * the interaction it was sent for, and the answer's `InResponseTo` must name one.
 *
 * One ledger serves one request of ours. Starting a sign-in, `saveAsync` keeps the new id.
 * Checking an answer, the first `getAsync` takes the id from the store — single use from the
 * first look, so two answers racing for one request cannot both pass, and a refused answer
 * burns the request too — and remembers what it was for (`taken`).
 */
import type { CacheItem, CacheProvider } from '@node-saml/node-saml';
import type { PendingRecord, PendingSignIns } from '../pending.js';

/** `values.kind` of a pending AuthnRequest, distinct from the sign-ins handed to `/complete`. */
export const REQUEST_KIND = 'saml-request';

export class RequestLedger implements CacheProvider {
  #key: string | undefined;
  #taken: PendingRecord | undefined;

  constructor(
    private readonly pending: PendingSignIns,
    private readonly connection: string,
    /** the sign-in a new request is for (starting), absent when checking an answer */
    private readonly forSignIn?: { uid: string; clientId: string },
  ) {}

  /** The request id the answer named (`InResponseTo`), once looked up. */
  get requestId(): string | undefined {
    return this.#taken ? this.#key : undefined;
  }

  /** The pending request the answer was checked against, once `getAsync` took it. */
  get taken(): PendingRecord | undefined {
    return this.#taken;
  }

  async saveAsync(key: string, value: string): Promise<CacheItem | null> {
    if (!this.forSignIn) throw new Error('this ledger checks answers; it starts no request');
    const { uid, clientId } = this.forSignIn;
    await this.pending.begin({ uid, connection: this.connection, values: { kind: REQUEST_KIND, createdAt: value, clientId } }, key);
    return { value, createdAt: Date.now() };
  }

  async getAsync(key: string): Promise<string | null> {
    if (typeof key !== 'string' || key.length === 0 || key.length > 256) return null;
    if (this.#key === undefined) {
      this.#key = key;
      const record = await this.pending.take(key);
      if (record && record.connection === this.connection && record.values.kind === REQUEST_KIND && typeof record.values.createdAt === 'string') {
        this.#taken = record;
      }
    }
    return key === this.#key && this.#taken ? this.#taken.values.createdAt! : null;
  }

  /** Nothing left to remove: the first look took the request. */
  async removeAsync(key: string | null): Promise<string | null> {
    return key;
  }
}
