/**
 * Keeps the client directory (store.clients) current: every client that is registered or
 * used is recorded with its kind and last use, for `mcp-authz clients list`. A dynamically
 * registered client lives while it is used: each use pushes its expiry (and that of its
 * stored registration) `registration.unusedClientTtl` into the future.
 */
import type { Client } from 'oidc-provider';
import type { Store } from '../../adapters/contract.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { clientKind } from './kind.js';
import { isAccountClient } from '../provider/account-client.js';

/** At most one directory write per client per this long (or a quarter of the client lifetime, if shorter). */
const TOUCH_INTERVAL_MS = 60_000;
/** Bound on the in-memory throttle table. */
const MAX_TRACKED = 10_000;

export interface ClientUsage {
  /** A client was just registered (RFC 7591). */
  registered(client: Client): Promise<void>;
  /** A client just took part in an authorization or token request. */
  used(client: Client): Promise<void>;
}

export function clientUsage(store: Store, config: Config, log: Logger): ClientUsage {
  const staticIds = new Set(config.clients.map((c) => c.client_id));
  const ttlMs = config.registration.unusedClientTtl * 1000;
  const interval = Math.min(TOUCH_INTERVAL_MS, ttlMs / 4);
  const lastWrite = new Map<string, number>();

  async function write(client: Client, now: number, used: boolean) {
    const kind = clientKind(client, staticIds);
    const existing = await store.clients.get(client.clientId);
    const record = {
      clientId: client.clientId,
      kind,
      ...(client.clientName ? { name: client.clientName } : {}),
      createdAt: existing?.createdAt ?? now,
      ...(used ? { lastUsedAt: now } : existing?.lastUsedAt ? { lastUsedAt: existing.lastUsedAt } : {}),
    };
    if (kind === 'static') return store.clients.put(record);
    if (kind === 'dcr' && used) {
      // slide the registration's own expiry: the stored client is what token requests need
      const registration = store.model('Client');
      const payload = await registration.find(client.clientId);
      if (payload) await registration.upsert(client.clientId, payload, config.registration.unusedClientTtl);
    }
    return store.clients.put(record, now + ttlMs);
  }

  return {
    async registered(client) {
      const now = Date.now();
      lastWrite.set(client.clientId, now);
      await write(client, now, false).catch((err: Error) => log.warn({ clientId: client.clientId, err: err.message }, 'could not record a registered client'));
    },
    async used(client) {
      // the account pages' built-in client is no client of the directory
      if (isAccountClient(client.clientId)) return;
      const now = Date.now();
      if (now - (lastWrite.get(client.clientId) ?? 0) < interval) return;
      if (lastWrite.size >= MAX_TRACKED) lastWrite.clear();
      lastWrite.set(client.clientId, now);
      await write(client, now, true).catch((err: Error) => log.warn({ clientId: client.clientId, err: err.message }, 'could not record a client use'));
    },
  };
}
