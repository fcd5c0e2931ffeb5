/**
 * A user code can be tried only a few times: each wrong code entered on the device page
 * counts against the source address (`rateLimits.userCodesPerSource`), and over the limit the
 * page refuses further codes with `429` and `Retry-After` until the window has passed —
 * guessing someone else's code gets nowhere. The count lives in the store, so replicas sharing
 * Redis share it.
 *
 * Every code entered is counted before the engine looks at it (so concurrent guesses cannot all
 * pass before the first wrong one counts) and taken back afterwards unless the device page
 * (src/interactions/provider-pages.ts) marked the request with {@link WRONG_USER_CODE}.
 */
import type { Middleware } from 'koa';
import { describeWait, tooManyRequestsPage, type RateLimits } from './limits.js';
import type { Render } from './render.js';

/** `ctx.state` flag: the code entered was unknown, expired or already used. */
export const WRONG_USER_CODE = 'wrongUserCode';

export function userCodeAttemptLimit(limits: RateLimits, devicePath: string, render: Render): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== devicePath) return next();
    const decision = await limits.userCode(ctx.ip);
    if (!decision.allowed) {
      limits.logHit(ctx, { limit: 'userCodesPerSource', key: 'source', retryAfterMs: decision.retryAfterMs });
      tooManyRequestsPage(
        ctx,
        render,
        decision.retryAfterMs,
        'Too many attempts',
        `Too many wrong codes were entered from here. Wait ${describeWait(decision.retryAfterMs)}, then enter the code shown on your device.`,
      );
      return;
    }
    try {
      await next();
    } finally {
      if ((ctx.state as Record<string, unknown>)[WRONG_USER_CODE] !== true) await limits.userCodeNotWrong(ctx.ip, decision.hit!);
    }
  };
}
