/**
 * An MCP server calling us as itself: a client listed in a resource's
 * `resourceServerClients`, authenticated with HTTP Basic (`client_secret_basic`, RFC 6749
 * §2.3.1). Used by the endpoints only MCP servers call (tool approvals, tool execution
 * reports). Failures are `401 invalid_client` with a `WWW-Authenticate: Basic` challenge,
 * whatever went wrong (unknown client, wrong secret, a client that acts for no MCP server),
 * so the answer tells a guesser nothing; the failed attempts count against
 * `rateLimits.clientAuthFailures*` (src/provider/client-auth-limit.ts lists these paths).
 */
import type { Context } from 'koa';
import type { ResourceConfig } from '../config/schema.js';
import type { ProviderHolder } from '../provider/holder.js';
import type { ResourceRegistry } from '../provider/resources.js';

export interface ResourceServerClient {
  clientId: string;
  /** the MCP servers (canonical URIs) this client acts as */
  resources: ReadonlySet<string>;
}

export class ResourceServerAuthError extends Error {
  override readonly name = 'ResourceServerAuthError';
}

const BASIC = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i;
const MAX_PART = 512;

/** The client id and secret of a `Basic` authorization header (form-urldecoded), or undefined. */
export function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = BASIC.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    const id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    const secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
    if (!id || !secret || id.length > MAX_PART || secret.length > MAX_PART) return undefined;
    return { id, secret };
  } catch {
    return undefined;
  }
}

/** The MCP servers `clientId` acts as (empty: none). */
export function resourcesActedAs(resources: ResourceRegistry, clientId: string): Set<string> {
  return new Set(resources.all.filter((r: ResourceConfig) => r.resourceServerClients.includes(clientId)).map((r) => r.uri));
}

/**
 * The resource-server client the request authenticates as; throws ResourceServerAuthError
 * (to be answered with {@link answerInvalidClient}) otherwise.
 */
export async function authenticateResourceServer(ctx: Context, holder: ProviderHolder, resources: ResourceRegistry): Promise<ResourceServerClient> {
  const credentials = basicCredentials(ctx.get('authorization'));
  if (!credentials) throw new ResourceServerAuthError('no client credentials (HTTP Basic)');
  const acts = resourcesActedAs(resources, credentials.id);
  if (acts.size === 0) throw new ResourceServerAuthError('the client acts for no MCP server');
  const client = await holder.provider.Client.find(credentials.id).catch(() => undefined);
  if (!client || !client.clientSecret) throw new ResourceServerAuthError('unknown client or no secret');
  // oidc-provider compares in constant time
  const matches = await (client as unknown as { compareClientSecret(secret: string): Promise<boolean> }).compareClientSecret(credentials.secret);
  if (!matches) throw new ResourceServerAuthError('wrong secret');
  return { clientId: client.clientId, resources: acts };
}

/** The `401 invalid_client` answer (RFC 6749 §5.2). */
export function answerInvalidClient(ctx: Context): void {
  ctx.status = 401;
  ctx.set('WWW-Authenticate', 'Basic realm="mcp-authz"');
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error: 'invalid_client', error_description: 'client authentication failed' };
}
