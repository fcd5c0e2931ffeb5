/**
 * GET /healthz: 200 when the store answers, 503 otherwise (for load balancers, Docker's
 * HEALTHCHECK and Kubernetes probes). Says which kind of store, nothing more.
 */
import type { Middleware } from 'koa';
import type { Store } from '../../adapters/contract.js';

export function health(store: Store, path = '/healthz'): Middleware {
  return async (ctx, next) => {
    if (ctx.path !== path) return next();
    ctx.set('Cache-Control', 'no-store');
    try {
      await store.ping();
      ctx.body = { status: 'ok', store: store.kind };
    } catch {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', store: store.kind };
    }
    return undefined;
  };
}
