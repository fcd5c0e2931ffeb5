/**
 * The shared revocation log's events (identifiers in the clear, kept server-side) as this
 * server uses them: as keys of its own revoked set (JWT introspection), and as the public
 * feed sends them, each identifier replaced by its hash (src/verifier/revocation.ts
 * `revocationHash`, computed here synchronously with the same prefix). An anonymous reader of
 * the feed learns when something was revoked, never what: only a holder of a token with the
 * same `jti`, `grant_id` or `sub` can match an entry.
 */
import { createHash } from 'node:crypto';
import type { RevocationEvent as StoredRevocation } from '../../adapters/contract.js';
import { REVOCATION_HASH_PREFIX, type RevocableClaims, type RevocableKeys, type RevocationEvent, type RevocationKind, type RevokedEntry } from '../verifier/revocation.js';

/** The feed's name for an identifier (what the verifier's `revocationHash` computes). */
export function feedHash(kind: RevocationKind, identifier: string): string {
  return createHash('sha256').update(`${REVOCATION_HASH_PREFIX}${kind}\0${identifier}`, 'utf8').digest('base64url');
}

function identifierOf(event: StoredRevocation): string {
  return event.type === 'token' ? event.jti : event.type === 'grant' ? event.grantId : event.sub;
}

/** A stored revocation as the public feed sends it. */
export function feedEvent(event: StoredRevocation): RevocationEvent {
  const key = feedHash(event.type, identifierOf(event));
  return event.type === 'subject' ? { type: 'subject', hash: key, before: event.before, until: event.until } : { type: event.type, hash: key, until: event.until };
}

/** A stored revocation as an entry of this server's own revoked set (identifiers as they are). */
export function revokedEntry(event: StoredRevocation): RevokedEntry {
  const key = identifierOf(event);
  return event.type === 'subject' ? { type: 'subject', key, before: event.before, until: event.until } : { type: event.type, key, until: event.until };
}

/** A token's claims as keys of this server's own revoked set. */
export function claimKeys(claims: RevocableClaims): RevocableKeys {
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return { token: text(claims.jti), grant: text(claims.grant_id), subject: text(claims.sub), iat: claims.iat };
}
