/**
 * What is revoked right now, from revocation log entries: jtis, grant ids, and per subject
 * the time before which its tokens are revoked. Entries are forgotten after their `until`.
 */
import type { RevocationEvent } from '../../adapters/contract.js';

export interface TokenClaims {
  jti?: string | undefined;
  grant_id?: string | undefined;
  sub?: string | undefined;
  iat?: number | undefined;
}

export class RevokedSet {
  readonly #jtis = new Map<string, number>();
  readonly #grants = new Map<string, number>();
  readonly #subjects = new Map<string, { before: number; until: number }>();

  add(event: RevocationEvent): void {
    if (event.type === 'token') this.#jtis.set(event.jti, Math.max(event.until, this.#jtis.get(event.jti) ?? 0));
    else if (event.type === 'grant') this.#grants.set(event.grantId, Math.max(event.until, this.#grants.get(event.grantId) ?? 0));
    else {
      const prev = this.#subjects.get(event.sub);
      this.#subjects.set(event.sub, { before: Math.max(event.before, prev?.before ?? 0), until: Math.max(event.until, prev?.until ?? 0) });
    }
  }

  isRevoked(claims: TokenClaims, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
    const live = (until: number | undefined) => until !== undefined && until >= nowSeconds;
    if (claims.jti && live(this.#jtis.get(claims.jti))) return true;
    if (claims.grant_id && live(this.#grants.get(claims.grant_id))) return true;
    const subject = claims.sub ? this.#subjects.get(claims.sub) : undefined;
    return !!subject && live(subject.until) && (claims.iat ?? 0) <= subject.before;
  }

  /** Drops entries that no longer matter (called periodically). */
  prune(nowSeconds = Math.floor(Date.now() / 1000)): void {
    for (const [k, until] of this.#jtis) if (until < nowSeconds) this.#jtis.delete(k);
    for (const [k, until] of this.#grants) if (until < nowSeconds) this.#grants.delete(k);
    for (const [k, v] of this.#subjects) if (v.until < nowSeconds) this.#subjects.delete(k);
  }
}
