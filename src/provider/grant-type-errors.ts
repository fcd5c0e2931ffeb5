/**
 * RFC 6749 §5.2: a client asking the token endpoint for a grant type it is not registered for is
 * `unauthorized_client` ("the authenticated client is not authorized to use this authorization grant
 * type"). oidc-provider answers `invalid_request` with its own description; this renames the error code
 * of exactly that answer, keeping the status (400) and the description.
 */
import type { Context, Middleware, Next } from 'koa';

const ENGINE_DESCRIPTION = 'requested grant type is not allowed for this client';

export function unauthorizedGrantType(basePath: string): Middleware {
  const tokenPath = `${basePath}/token`;
  const answered = (ctx: Context) => {
    if (ctx.status !== 400) return;
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (body?.error === 'invalid_request' && body.error_description === ENGINE_DESCRIPTION) body.error = 'unauthorized_client';
  };
  const rewrite = (ctx: Context, next: Next) => next().then(() => answered(ctx));
  // any other request passes straight on
  return (ctx, next) => (ctx.path === tokenPath ? rewrite(ctx, next) : next());
}
