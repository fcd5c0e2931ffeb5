/**
 * Turns what a client asks for into what a person reads: who asks (ClientView), which
 * MCP servers and which scopes, for how long.
 */
import type { Client } from 'oidc-provider';
import type { Config, ResourceConfig } from '../config/schema.js';
import type { ResourceRegistry } from '../provider/resources.js';
import type { ClientView } from '../http/render.js';

export function clientView(client: Client, redirectUri?: unknown): ClientView {
  let redirectHost: string | undefined;
  if (typeof redirectUri === 'string' && URL.canParse(redirectUri)) {
    const url = new URL(redirectUri);
    redirectHost = url.host || url.protocol.replace(/:$/, '');
  }
  return {
    id: client.clientId,
    name: client.clientName ?? client.clientId,
    nameIsSelfAsserted: true,
    host: 'registered by your administrator',
    ...(redirectHost ? { redirectHost } : {}),
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
  return {
    accessToken: humanDuration(ttl),
    ...(client.grantTypeAllowed('refresh_token') ? { refreshToken: humanDuration(config.ttl.refreshToken) } : {}),
  };
}
