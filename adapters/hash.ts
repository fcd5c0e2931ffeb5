/**
 * Hashing shared by both stores.
 *
 * Most oidc-provider ids are bearer values (an opaque access token *is* its id), so a
 * store must never hold them in the clear: a leaked database file or Redis dump would
 * otherwise hand out working tokens. Records are keyed by `sha256(id)` instead; the
 * hash is enough to look a record up when the bearer presents the id again, and
 * useless to someone who only has the stored form.
 */
import { hash } from 'node:crypto';

/**
 * SHA-256 of `value`, base64url without padding (43 characters).
 *
 * Unsalted on purpose: the lookup must be deterministic, and the inputs are
 * high-entropy random ids (or short-lived user codes), not passwords. One-shot `crypto.hash`:
 * a third of the cost of a `createHash` object, and these are hashed on every request.
 */
export function sha256(value: string): string {
  return hash('sha256', value, 'base64url');
}
