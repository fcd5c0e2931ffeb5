/**
 * Every URL the engine builds for a response — discovery's endpoints, `verification_uri`, the
 * redirects to interactions — starts with the configured issuer. oidc-provider builds them
 * from the request (`Host`, `X-Forwarded-Host` behind a trusted proxy, or an absolute-form
 * request target), so anyone could make discovery name their host; here the per-request
 * `urlFor` keeps the engine's path (with its mount path) and takes the origin from the issuer.
 */
import type Provider from 'oidc-provider';

type UrlFor = (this: unknown, name: string, options?: Record<string, unknown>) => string;

export function urlsFromIssuer(provider: Provider, issuer: string): void {
  const { origin } = new URL(issuer);
  const prototype = (provider as unknown as { OIDCContext: { prototype: { urlFor?: UrlFor } } }).OIDCContext.prototype;
  const urlFor = prototype.urlFor;
  if (typeof urlFor !== 'function') {
    throw new Error('oidc-provider has no OIDCContext urlFor: update src/provider/issuer-urls.ts for this oidc-provider version');
  }
  prototype.urlFor = function (this: unknown, name, options) {
    const built = new URL(urlFor.call(this, name, options));
    return new URL(`${built.pathname}${built.search}`, origin).href;
  };
}
