/**
 * The verified identity, from the assertion consumer service to our own GET route.
 *
 * The identity provider POSTs the answer cross-site, so the browser does not send the
 * engine's interaction cookie (SameSite=Lax) with it, and the login prompt cannot be
 * finished there. The ACS keeps what it verified under a new random key (in the store,
 * single-use, usable for {@link HANDOFF_MS}) and sends the browser with a 303 to
 * `…/saml/complete?k=<key>`, a top-level GET that carries the cookie. Finishing checks that
 * the cookie's interaction is the one the request was made for, so a key is no use in
 * another browser.
 */
import type { PendingSignIns } from '../pending.js';
import { upstreamIdentitySchema, type UpstreamIdentity } from '../identity.js';

export const HANDOFF_KIND = 'saml-identity';
/** how long the browser has to follow the redirect */
export const HANDOFF_MS = 120_000;

export interface Handoff {
  uid: string;
  clientId?: string | undefined;
  identity: UpstreamIdentity;
}

export async function keepHandoff(pending: PendingSignIns, connection: string, handoff: Handoff, now = Date.now()): Promise<string> {
  return pending.begin({
    uid: handoff.uid,
    connection,
    values: {
      kind: HANDOFF_KIND,
      identity: JSON.stringify(handoff.identity),
      notAfter: String(now + HANDOFF_MS),
      ...(handoff.clientId ? { clientId: handoff.clientId } : {}),
    },
  });
}

/** The handoff under `key`, once; undefined when unknown, used, expired or not this connection's. */
export async function takeHandoff(pending: PendingSignIns, connection: string, key: unknown, now = Date.now()): Promise<Handoff | undefined> {
  if (typeof key !== 'string' || !/^[A-Za-z0-9_-]{16,128}$/.test(key)) return undefined;
  const record = await pending.take(key);
  if (!record || record.connection !== connection || record.values.kind !== HANDOFF_KIND) return undefined;
  if (!(Number(record.values.notAfter) > now)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(record.values.identity ?? '');
  } catch {
    return undefined;
  }
  const identity = upstreamIdentitySchema.safeParse(raw);
  return identity.success ? { uid: record.uid, clientId: record.values.clientId, identity: identity.data } : undefined;
}
