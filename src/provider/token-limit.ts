/**
 * The token endpoint's limit per client (`rateLimits.tokenPerClient`).
 *
 * Counted inside the engine, right before the grant type's handler runs: by then oidc-provider
 * has authenticated the client (secret, `private_key_jwt`, …) and checked it may use the grant.
 * Counting any earlier — on the `client_id` a request merely names — would let anyone spend a
 * client's budget, and lock it out, by sending requests in its name without its credentials;
 * those now fail `invalid_client` without being counted. The count is one atomic `hit`, so of
 * concurrent requests exactly `max` per window pass, across replicas sharing Redis. The same
 * step takes back the request's client authentication attempt (src/provider/client-auth-limit.ts):
 * reaching a grant's handler, the client has authenticated.
 *
 * A public client (`token_endpoint_auth_method: none`) proves nothing but its id, and that id
 * is shared by every installation of the app (a metadata document URL especially): it is
 * counted per client and source address (see `tokenClientKey`).
 *
 * Over the limit: `429`, `Retry-After`, `Cache-Control: no-store` (the engine's) and
 * `temporarily_unavailable` — or `slow_down` for the device code grant, the error RFC 8628
 * devices know to wait on.
 *
 * The handlers are reached through an oidc-provider internal (src/provider/grant-handlers.ts).
 */
import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { describeWait, retryAfterSeconds, tokenClientKey, type RateLimits } from '../http/limits.js';
import { grantHandlers, wrapGrantHandler } from './grant-handlers.js';
import { reachable } from './adapter.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

class TokenRequestsLimited extends errors.TemporarilyUnavailable {
  constructor(retryAfterMs: number) {
    super(`too many token requests from this client; try again in ${describeWait(retryAfterMs)}`);
    this.status = 429;
    this.statusCode = 429;
  }
}

class DevicePollingLimited extends errors.SlowDown {
  constructor(retryAfterMs: number) {
    super(`too many token requests from this client; wait ${describeWait(retryAfterMs)} and poll less often`);
    this.status = 429;
    this.statusCode = 429;
  }
}

/** Puts the limit in front of every grant type handler the provider has registered. */
export function limitTokenRequests(provider: Provider, limits: RateLimits): void {
  for (const grantType of [...grantHandlers(provider).keys()]) {
    wrapGrantHandler(provider, grantType, (handler) => (ctx: KoaContextWithOIDC) => {
      const client = ctx.oidc.client;
      if (!client) return handler(ctx);
      // the store's outage inside the engine is its 503, as the adapter's is (src/provider/adapter.ts);
      // one promise a token request, not an async frame around the handler
      return reachable(() => limits.token(tokenClientKey(client.clientId, client.clientAuthMethod === 'none', ctx.ip), ctx)).then((decision) => {
        if (!decision.allowed) {
          limits.logHit(ctx, { limit: 'tokenPerClient', key: 'client', retryAfterMs: decision.retryAfterMs }, { clientId: client.clientId });
          ctx.set('Retry-After', String(retryAfterSeconds(decision.retryAfterMs)));
          throw grantType === DEVICE_GRANT ? new DevicePollingLimited(decision.retryAfterMs) : new TokenRequestsLimited(decision.retryAfterMs);
        }
        return handler(ctx);
      });
    });
  }
}
