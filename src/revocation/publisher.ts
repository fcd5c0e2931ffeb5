/**
 * Turns "this was revoked" into entries of the shared revocation log that verifiers follow.
 * `until` is when an entry stops mattering: the latest expiry of a token it can affect.
 */
import type { RevocationLog } from '../../adapters/contract.js';
import type { Logger } from '../observability/logger.js';

export interface RevocationPublisher {
  /** one token, by its `jti`, which expires at `exp` (epoch seconds) */
  token(jti: string, exp: number): Promise<void>;
  /** every token of a grant */
  grant(grantId: string): Promise<void>;
  /** every token of a subject issued until now (account removed, "sign out of all apps") */
  subject(sub: string): Promise<void>;
}

export function revocationPublisher(log: RevocationLog, longestTokenTtl: number, logger?: Logger): RevocationPublisher {
  const now = () => Math.floor(Date.now() / 1000);
  const append = async (event: Parameters<RevocationLog['append']>[0]) => {
    try {
      await log.append(event);
    } catch (err) {
      logger?.error({ event: 'revocation.publish_failed', type: event.type, err: { message: (err as Error).message } }, 'could not publish a revocation');
      throw err;
    }
  };
  return {
    token: (jti, exp) => append({ type: 'token', jti, until: Math.max(exp, now()) }),
    grant: (grantId) => append({ type: 'grant', grantId, until: now() + longestTokenTtl }),
    subject: (sub) => append({ type: 'subject', sub, before: now(), until: now() + longestTokenTtl }),
  };
}
