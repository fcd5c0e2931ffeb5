/**
 * How a model payload is turned into its stored form and back: the storage rules of
 * adapters/contract.ts, written once so both stores apply them identically.
 *
 * - the `jti` (the id, a bearer value for most models) is dropped before storing, except
 *   for the models in MODELS_KEEPING_ID whose secondary-index lookups must return it;
 *   `find(id)` puts it back from the id the caller already holds;
 * - `consumed` lives outside the payload body (a column / hash field) so `consume()` can
 *   set it atomically without rewriting the JSON; it is merged back on read;
 * - the fields the stores index (grantId, uid, userCode) are extracted here.
 */
import { MODELS_KEEPING_ID, StoreError, type AdapterPayload, type RevocationEvent } from './contract.js';

export interface EncodedPayload {
  /** the payload as JSON, without `consumed` and (unless kept) without `jti` */
  body: string;
  /** epoch seconds, when the payload arrived already consumed */
  consumed: number | undefined;
  grantId: string | undefined;
  uid: string | undefined;
  userCode: string | undefined;
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export function encodePayload(model: string, payload: AdapterPayload): EncodedPayload {
  const { jti, consumed, ...rest } = payload;
  const kept: Record<string, unknown> = MODELS_KEEPING_ID.has(model) && jti !== undefined ? { ...rest, jti } : rest;
  return {
    body: JSON.stringify(kept),
    consumed: typeof consumed === 'number' && Number.isFinite(consumed) ? consumed : undefined,
    grantId: nonEmptyString(payload.grantId),
    uid: nonEmptyString(payload.uid),
    userCode: nonEmptyString(payload.userCode),
  };
}

/**
 * Rebuilds the payload oidc-provider expects. `id` is given by `find(id)` (the caller
 * holds it); secondary-index lookups pass undefined and rely on the kept `jti`.
 * Throws StoreError (without echoing the body, which may hold secrets) when unreadable.
 */
export function decodePayload(
  model: string,
  body: string,
  consumed: number | null | undefined,
  id: string | undefined,
): AdapterPayload {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new StoreError(`a stored ${model} record cannot be read (invalid JSON)`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new StoreError(`a stored ${model} record cannot be read (not an object)`);
  }
  const payload: AdapterPayload = { ...(parsed as AdapterPayload) };
  if (id !== undefined) payload.jti = id;
  if (typeof consumed === 'number') payload.consumed = consumed;
  return payload;
}

/**
 * The record's lifetime in milliseconds.
 *
 * `expiresIn` is typed as a number, but oidc-provider upserts some models (Client,
 * via dynamic registration or `addClient`) without one: those records do not expire.
 * A non-positive lifetime means the record is already dead and must not be stored.
 */
export function lifetimeMs(expiresIn: number | undefined): number | 'none' | 'expired' {
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn)) return 'none';
  if (expiresIn <= 0) return 'expired';
  return Math.ceil(expiresIn * 1000);
}

/** Epoch seconds, the unit oidc-provider uses for `consumed`, `exp` and `iat`. */
export function epochSeconds(now = Date.now()): number {
  return Math.floor(now / 1000);
}

/**
 * A stored revocation log entry as an event, or undefined when it is not one (never thrown:
 * one bad entry must not stall the feed). Shared by both stores' logs.
 */
export function decodeRevocationEvent(text: string): RevocationEvent | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const event = value as { type?: unknown; until?: unknown };
    if (typeof event.type !== 'string' || typeof event.until !== 'number') return undefined;
    return value as RevocationEvent;
  } catch {
    return undefined;
  }
}
