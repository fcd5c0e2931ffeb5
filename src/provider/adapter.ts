/**
 * Bridges a store to oidc-provider's adapter interface. Two translations:
 * - a lost race to consume a code or refresh token (the store's AlreadyConsumedError)
 *   becomes the OAuth `invalid_grant` the client should see, not a server error;
 * - device codes are kept for a while after they expire, so that a device still polling
 *   gets RFC 8628's `expired_token` (the engine reads the expired record) rather than
 *   `invalid_grant` for a code that vanished.
 */
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { AlreadyConsumedError, type Store } from '../../adapters/contract.js';

/** How long an expired device code is kept to answer `expired_token`. */
export const EXPIRED_DEVICE_CODE_GRACE = 600;

export function adapterClass(store: Store) {
  return class StoreAdapter implements Adapter {
    readonly #model;

    constructor(readonly name: string) {
      this.#model = store.model(name);
    }

    upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      const keepFor = this.name === 'DeviceCode' ? expiresIn + EXPIRED_DEVICE_CODE_GRACE : expiresIn;
      return this.#model.upsert(id, payload as Record<string, unknown>, keepFor);
    }

    find(id: string) {
      return this.#model.find(id) as Promise<AdapterPayload | undefined>;
    }

    findByUserCode(userCode: string) {
      return this.#model.findByUserCode(userCode) as Promise<AdapterPayload | undefined>;
    }

    findByUid(uid: string) {
      return this.#model.findByUid(uid) as Promise<AdapterPayload | undefined>;
    }

    async consume(id: string) {
      try {
        await this.#model.consume(id);
      } catch (err) {
        if (err instanceof AlreadyConsumedError) throw new errors.InvalidGrant('grant already used');
        throw err;
      }
    }

    destroy(id: string) {
      return this.#model.destroy(id);
    }

    revokeByGrantId(grantId: string) {
      return this.#model.revokeByGrantId(grantId);
    }
  };
}
