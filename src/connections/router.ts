/**
 * The drivers' own routes, under `/connections/:id/` — where upstreams send their answers
 * (OIDC callback, SAML assertion consumer service) and what they read of us (SAML metadata).
 * Each driver adds its routes to the router of its connection; a disabled or unknown
 * connection answers 404.
 */
import Router from '@koa/router';
import type { CompleteSignIn } from './driver.js';
import type { ConnectionRegistry } from './registry.js';

export const CONNECTIONS_PATH = '/connections';

export function connectionsRouter(registry: ConnectionRegistry, complete: CompleteSignIn, basePath: string): Router {
  const router = new Router({ prefix: `${basePath}${CONNECTIONS_PATH}` });
  for (const driver of registry.enabled()) {
    if (!driver.routes) continue;
    const own = new Router({ prefix: `/${driver.config.id}` });
    driver.routes(own, complete);
    router.use(own.routes(), own.allowedMethods());
  }
  return router;
}
