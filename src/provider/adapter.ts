/**
 * Bridges a store to oidc-provider's adapter interface. Two translations:
 * - a lost race to consume a code or refresh token (the store's AlreadyConsumedError)
 *   becomes the OAuth `invalid_grant` the client should see, not a server error;
 * - device codes are kept for a while after they expire, so that a device still polling
 *   gets RFC 8628's `expired_token` (the engine reads the expired record) rather than
 *   `invalid_grant` for a code that vanished;
 * - a registered client, stored without a lifetime, is kept for the configured unused-client time;
 * - a Grant saved or destroyed is mirrored in the grant directory (`store.grants`), which the
 *   "connected apps" page and `mcp-authz grants` list (oidc-provider cannot list grants).
 */
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { AlreadyConsumedError, isStoreUnavailable, type Store } from '../../adapters/contract.js';
import { heldConsumes } from './refresh-reuse.js';
import { STORE_UNAVAILABLE_DESCRIPTION } from '../http/error-boundary.js';

/** The store cannot be reached: the engine answers `503 temporarily_unavailable` (and Retry-After, src/http/error-boundary.ts). */
export class StoreUnavailable extends errors.TemporarilyUnavailable {
  constructor() {
    super(STORE_UNAVAILABLE_DESCRIPTION);
    this.status = 503;
    this.statusCode = 503;
  }
}

/** Runs a store call, turning "cannot be reached" into the engine's 503. */
export function reachable<T>(call: () => Promise<T>): Promise<T> {
  // one promise a call, not an async frame around it (every store call of the engine comes here)
  let pending: Promise<T>;
  try {
    pending = Promise.resolve(call());
  } catch (err) {
    return Promise.reject(unreachable(err));
  }
  return pending.then(undefined, (err: unknown) => {
    throw unreachable(err);
  });
}

function unreachable(err: unknown): unknown {
  return isStoreUnavailable(err) ? new StoreUnavailable() : err;
}

/** How long an expired device code is kept to answer `expired_token`. */
export const EXPIRED_DEVICE_CODE_GRACE = 600;

export interface AdapterOptions {
  /** how long a dynamically registered client is kept (seconds); each use extends it (src/clients/usage.ts) */
  clientTtl: number;
}

export function adapterClass(store: Store, { clientTtl }: AdapterOptions) {
  /** The directory record of a saved Grant: its first save's time and last use survive later saves (step-up consent). */
  async function recordGrant(grantId: string, payload: AdapterPayload, expiresIn: number) {
    const { accountId, clientId } = payload as { accountId?: unknown; clientId?: unknown };
    if (typeof accountId !== 'string' || typeof clientId !== 'string') return;
    const now = Date.now();
    const existing = await store.grants.get(grantId);
    // now rather than the payload's iat: milliseconds order grants given within the same second
    const createdAt = existing?.createdAt ?? now;
    const lastUsedAt = existing?.lastUsedAt;
    await store.grants.put({ grantId, accountId, clientId, createdAt, ...(lastUsedAt === undefined ? {} : { lastUsedAt }) }, now + expiresIn * 1000);
  }

  return class StoreAdapter implements Adapter {
    readonly #model;

    constructor(readonly name: string) {
      this.#model = store.model(name);
    }

    upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      // registered clients come without a lifetime: they are kept while they are used
      const keepFor = this.name === 'DeviceCode' ? expiresIn + EXPIRED_DEVICE_CODE_GRACE : this.name === 'Client' ? clientTtl : expiresIn;
      return reachable(async () => {
        await this.#model.upsert(id, payload as Record<string, unknown>, keepFor);
        if (this.name === 'Grant') await recordGrant(id, payload, expiresIn);
      });
    }

    find(id: string) {
      return reachable(() => this.#model.find(id) as Promise<AdapterPayload | undefined>);
    }

    findByUserCode(userCode: string) {
      return reachable(() => this.#model.findByUserCode(userCode) as Promise<AdapterPayload | undefined>);
    }

    findByUid(uid: string) {
      return reachable(() => this.#model.findByUid(uid) as Promise<AdapterPayload | undefined>);
    }

    consume(id: string) {
      // during a claimed refresh rotation the token is spent once its answer is settled (src/provider/refresh-reuse.ts)
      const held = this.name === 'RefreshToken' ? heldConsumes.getStore() : undefined;
      if (held) {
        held.push(id);
        return Promise.resolve();
      }
      return reachable(async () => {
        try {
          await this.#model.consume(id);
        } catch (err) {
          if (err instanceof AlreadyConsumedError) throw new errors.InvalidGrant('grant already used');
          throw err;
        }
      });
    }

    destroy(id: string) {
      return reachable(async () => {
        await this.#model.destroy(id);
        if (this.name === 'Grant') await store.grants.remove(id);
      });
    }

    revokeByGrantId(grantId: string) {
      return reachable(() => this.#model.revokeByGrantId(grantId));
    }
  };
}
