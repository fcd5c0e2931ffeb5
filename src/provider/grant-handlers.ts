/**
 * The token endpoint's grant type handlers, wrapped where we add a check that must run once the
 * engine has authenticated the client and checked it may use the grant, and before the grant's
 * own handler: the token limit (token-limit.ts), client credentials for configured clients only
 * (machine-grant.ts), the refresh token's resource (refresh-target.ts).
 *
 * They live in an oidc-provider internal (`instance(provider).grantTypeHandlers`); start-up
 * fails, naming the file to update, if that ever changes shape.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

export type GrantHandler = (ctx: KoaContextWithOIDC) => Promise<void>;

/** The engine's grant type handlers, by grant type. */
export function grantHandlers(provider: Provider): Map<string, GrantHandler> {
  const handlers = instance(provider).grantTypeHandlers;
  if (!(handlers instanceof Map) || handlers.size === 0) {
    throw new Error('oidc-provider has no grantTypeHandlers map: update src/provider/grant-handlers.ts for this oidc-provider version');
  }
  return handlers as Map<string, GrantHandler>;
}

/** Puts `wrap` around the handler of `grantType`. */
export function wrapGrantHandler(provider: Provider, grantType: string, wrap: (handler: GrantHandler) => GrantHandler): void {
  const handlers = grantHandlers(provider);
  const handler = handlers.get(grantType);
  if (!handler) throw new Error(`oidc-provider has no ${grantType} handler: update src/provider/grant-handlers.ts for this oidc-provider version`);
  handlers.set(grantType, wrap(handler));
}
