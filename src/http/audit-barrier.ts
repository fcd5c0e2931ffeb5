/**
 * A request that recorded audit events answers only once they are written: what the client is
 * told (a token issued, a grant revoked) is in the audit trail first, so an acknowledged record
 * survives the server being killed right after. The log writes in batches (src/audit/log.ts),
 * so under load the wait is a share of one write, not one write per record; a request that
 * recorded nothing does not wait.
 */
import type { Middleware } from 'koa';
import type { AuditLog } from '../audit/events.js';

export function auditBarrier(audit: AuditLog): Middleware {
  return (_ctx, next) => {
    const before = audit.recorded;
    return next().then(
      () => (audit.recorded !== before ? audit.written() : undefined),
      async (err: unknown) => {
        if (audit.recorded !== before) await audit.written();
        throw err;
      },
    );
  };
}
