/**
 * Turns what a client asks for into what a person reads: who asks (ClientView), which
 * MCP servers and which scopes, for how long.
 */
import type { Client } from 'oidc-provider';
import type { Config, ResourceConfig } from '../config/schema.js';
import type { ResourceRegistry } from '../provider/resources.js';
import type { ClientView } from '../http/render.js';
import { clientKind, clientProvenance } from '../clients/kind.js';
import { isLoopbackHost } from '../config/uri.js';
import { ACCOUNT_CLIENT_NAME, isAccountClient } from '../provider/account-client.js';

/** Who asks: the client's self-asserted name, and where it comes from (administrator, its document's host, dynamic registration). */
export function clientView(client: Client, staticIds: ReadonlySet<string>, redirectUri?: unknown): ClientView {
  // this server's own account pages: a name of ours, not one given by an app
  if (isAccountClient(client.clientId)) return { id: client.clientId, name: ACCOUNT_CLIENT_NAME, nameIsSelfAsserted: false, host: 'this sign-in service' };
  let redirectHost: string | undefined;
  let loopback = false;
  if (typeof redirectUri === 'string' && URL.canParse(redirectUri)) {
    const url = new URL(redirectUri);
    redirectHost = url.host || url.protocol.replace(/:$/, '');
    loopback = url.protocol === 'http:' && isLoopbackHost(url.hostname);
  }
  const kind = clientKind(client, staticIds);
  return {
    id: client.clientId,
    name: client.clientName ?? client.clientId,
    nameIsSelfAsserted: true,
    host: clientProvenance(client, kind),
    ...(redirectHost ? { redirectHost } : {}),
    ...(loopback && kind !== 'static' ? { localOnly: true } : {}),
  };
}

/** Resource indicators in request parameters (one or many) in request order, without duplicates. */
export function requestedIndicators(resourceParam: unknown): string[] {
  const values = Array.isArray(resourceParam) ? resourceParam : resourceParam === undefined ? [] : [resourceParam];
  return [...new Set(values.filter((v): v is string => typeof v === 'string'))];
}

export interface RequestedResource {
  /** the indicator exactly as the client sent it (the grant is keyed by it) */
  indicator: string;
  resource: ResourceConfig;
  /** requested scopes this client may have, in declaration order */
  scopes: string[];
  /** true when the request named no scope of this resource and `scopes` are its defaultScopes */
  defaulted: boolean;
}

/** The resources and scopes a request asks for, limited to what the client may ever get. */
export function requestedResources(registry: ResourceRegistry, clientId: string, resourceParam: unknown, scopeParam: unknown): RequestedResource[] {
  const requested = new Set(typeof scopeParam === 'string' ? scopeParam.split(' ').filter(Boolean) : []);
  const out: RequestedResource[] = [];
  for (const indicator of requestedIndicators(resourceParam)) {
    const resource = registry.find(indicator);
    if (!resource || !registry.mayUse(clientId, resource)) continue;
    const allowed = registry.allowedScopes(clientId, resource);
    const asked = allowed.filter((s) => requested.has(s));
    // MCP clients often name no scope: then the server's default scopes are what is asked for
    const defaulted = !Object.keys(resource.scopes).some((s) => requested.has(s));
    const scopes = defaulted ? allowed.filter((s) => resource.defaultScopes.includes(s)) : asked;
    out.push({ indicator, resource, scopes, defaulted });
  }
  return out;
}

export function humanDuration(seconds: number): string {
  const units: [number, string][] = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ];
  for (const [size, name] of units) {
    if (seconds >= size && seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  const n = Math.round(seconds / 60);
  return `${n} minute${n === 1 ? '' : 's'}`;
}

export function lifetimes(config: Config, resources: RequestedResource[], client: Client) {
  const ttl = Math.min(...resources.map((r) => r.resource.accessTokenTtl), ...(resources.length ? [] : [3600]));
  // scopes with their own, shorter token lifetime (typically the dangerous ones)
  const shorter = resources.flatMap((r) => r.scopes.map((s) => r.resource.scopes[s]?.accessTokenTtl).filter((t): t is number => t !== undefined && t < ttl));
  return {
    accessToken: humanDuration(ttl),
    ...(shorter.length ? { sensitiveAccessToken: humanDuration(Math.min(...shorter)) } : {}),
    ...(client.grantTypeAllowed('refresh_token') ? { refreshToken: humanDuration(config.ttl.refreshToken) } : {}),
    remembered: humanDuration(config.ttl.grant),
  };
}

/** A stored (normalised) user code in the shape the device shows it, e.g. `BCDF-GHJK` for mask `****-****`. */
export function maskUserCode(code: string, mask: string): string {
  let i = 0;
  const shaped = [...mask].map((c) => (c === '*' ? (code[i++] ?? '') : c)).join('');
  return i >= code.length ? shaped : code;
}
