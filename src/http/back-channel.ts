/**
 * The engine's back-channel endpoints (token, introspection, revocation) are called by
 * programs, often in tight loops, and none of the pages, routers or other endpoints of the
 * server acts on them. `besideBackChannel` runs a group of such middleware for every other
 * request and steps over the whole group for these paths: one check instead of a dozen
 * layers, each of which would look at the path and pass the request on.
 */
import type { Middleware } from 'koa';
import compose from 'koa-compose';

/** The paths, under the issuer's base path, that only the engine and its own checks answer. */
export function backChannelPaths(basePath: string): ReadonlySet<string> {
  return new Set(['/token', '/token/introspection', '/token/revocation'].map((path) => `${basePath}${path}`));
}

/** `middleware`, in order, for every request but those to `paths`. */
export function besideBackChannel(paths: ReadonlySet<string>, middleware: Middleware[]): Middleware {
  const group = compose(middleware);
  return (ctx, next) => (paths.has(ctx.path) ? next() : group(ctx, next));
}
