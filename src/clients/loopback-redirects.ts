/**
 * Redirect URIs match exactly, except that a loopback one (`http` to 127.0.0.1, [::1] or
 * localhost) matches on any port (RFC 8252 §7.3): MCP clients on a person's machine listen
 * on a port chosen at run time, whatever kind of client they registered as — statically, by
 * a metadata document that lists `http://localhost/callback`, or dynamically without
 * `application_type: native`. oidc-provider relaxes the port for native clients only.
 */
import type Provider from 'oidc-provider';
import { isLoopbackHost } from '../config/uri.js';

/** The URI without its port when it is an http loopback URI; undefined otherwise. */
export function withoutLoopbackPort(uri: string): string | undefined {
  const url = URL.parse(uri);
  if (!url || url.protocol !== 'http:' || !isLoopbackHost(url.hostname) || url.username || url.password) return undefined;
  url.port = '';
  return url.href;
}

/**
 * A redirect URI that is plain http to a host other than a loopback one (MCP: redirect URIs are
 * localhost or https); the first such among `uris`, or undefined. Other schemes (a native app's
 * private-use scheme, RFC 8252 §7.1) are the engine's to judge by application_type.
 */
export function plainHttpRedirect(uris: readonly unknown[]): string | undefined {
  return uris.find((uri): uri is string => typeof uri === 'string' && URL.parse(uri)?.protocol === 'http:' && !isLoopbackHost(URL.parse(uri)!.hostname));
}

export function loopbackRedirectMatch(requested: string, registered: readonly string[]): boolean {
  const wanted = withoutLoopbackPort(requested);
  return wanted !== undefined && registered.some((uri) => withoutLoopbackPort(uri) === wanted);
}

export function allowAnyLoopbackPort(provider: Provider): void {
  const proto = provider.Client.prototype as unknown as {
    redirectUriAllowed(this: { redirectUris?: string[] }, value: string): boolean;
  };
  const exact = proto.redirectUriAllowed;
  proto.redirectUriAllowed = function redirectUriAllowed(value: string) {
    return exact.call(this, value) || loopbackRedirectMatch(value, this.redirectUris ?? []);
  };
}
