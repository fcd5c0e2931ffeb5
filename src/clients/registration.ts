/**
 * Hygiene around RFC 7591 registration (oidc-provider registers; this runs in front of it):
 * - registrations are limited per source address (`rateLimits.registrationPerSource`, in the store:
 *   shared by replicas on Redis);
 * - scopes this server does not know are dropped from the request rather than refused (MCP
 *   scopes too, from the registered metadata: they are granted per MCP server on consent);
 * - a public client registering with byte-identical metadata gets the client registered
 *   before instead of a new one, so clients that register on every connection do not
 *   fill the store;
 * - a redirect URI with a control, whitespace or invisible character (a trailing CR the engine's URL
 *   check lets through) is refused (`invalid_redirect_uri`): it would be matched and echoed as stored;
 * - so is a plain http redirect URI to a host that is not loopback (MCP: localhost or https), which
 *   the engine allows a web client;
 * - the client credentials grant is refused (`invalid_client_metadata`) unless
 *   `registration.clientCredentials` offers it (src/clients/machine-clients.ts);
 * - every registration (and refusal) is logged; the directory records new clients;
 * - CORS for browser-based clients, from any origin (the endpoint uses no cookies).
 */
import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Store } from '../../adapters/contract.js';
import { OIDC_SCOPES, type Config } from '../config/schema.js';
import { readBody, replayBody } from '../http/form-params.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderHolder } from '../provider/holder.js';
import type { ResourceRegistry } from '../provider/resources.js';
import type { ClientUsage } from './usage.js';
import { tooManyRequests, type RateLimits } from '../http/limits.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';
import type { MachineClients } from './machine-clients.js';
import { plainHttpRedirect } from './loopback-redirects.js';

/** oidc-provider's own limit for JSON bodies (lib/shared/selective_body.js). */
const BODY_LIMIT = 56 * 1024;
/** Where identical registrations are remembered: sha256(body) → client id. */
const DIGEST_MODEL = 'RegistrationDigest';

export interface RegistrationDeps {
  config: Config;
  store: Store;
  holder: ProviderHolder;
  resources: ResourceRegistry;
  usage: ClientUsage;
  log: Logger;
  limits: RateLimits;
  audit: AuditLog;
  machine: MachineClients;
  path: string;
}

export function registrationHygiene({ config, store, holder, resources, usage, log, limits, audit, machine, path }: RegistrationDeps): Middleware {
  const known = new Set([...OIDC_SCOPES, ...resources.scopeNames]);
  const digests = store.model(DIGEST_MODEL);
  const ttl = config.registration.unusedClientTtl;

  return async (ctx, next) => {
    if (ctx.path !== path || config.registration.mode === 'off') return next();
    // browser-based clients register from their own origin; the endpoint takes no cookies
    if (ctx.get('origin')) ctx.set('Access-Control-Allow-Origin', '*');
    if (ctx.method === 'OPTIONS') {
      ctx.set('Access-Control-Allow-Methods', 'POST');
      ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type, MCP-Protocol-Version');
      ctx.set('Access-Control-Max-Age', '600');
      ctx.status = 204;
      return;
    }
    if (ctx.method !== 'POST') return next();

    const decision = await limits.registration(ctx.ip);
    if (!decision.allowed) {
      limits.logHit(ctx, { limit: 'registrationPerSource', key: 'source', retryAfterMs: decision.retryAfterMs });
      tooManyRequests(ctx, decision.retryAfterMs, 'too many registrations from this address; try again later');
      return;
    }

    const raw = ctx.is('application/json') ? await readBody(ctx, BODY_LIMIT) : undefined;
    const metadata = raw ? parseObject(raw) : undefined;
    let body = raw;
    if (metadata && typeof metadata.scope === 'string') {
      // the engine knows only OpenID scopes as client metadata; MCP scopes are granted per
      // resource on consent, so they are not registered, and scopes nobody knows are dropped
      const requested = metadata.scope.split(' ').filter(Boolean);
      const kept = requested.filter((s) => OIDC_SCOPES.has(s));
      const unknown = requested.filter((s) => !known.has(s));
      if (kept.length !== requested.length) {
        if (kept.length > 0) metadata.scope = kept.join(' ');
        else delete metadata.scope;
        body = Buffer.from(JSON.stringify(metadata));
      }
      if (unknown.length > 0) {
        log.info({ event: 'registration.scopes_dropped', ...requestFacts(ctx), dropped: unknown }, 'unknown scopes dropped from a registration');
      }
    }

    const badRedirect = redirectUriRefusal(metadata);
    // tokens without a person are for clients the operator configured (src/clients/machine-clients.ts)
    const refusal = machine.registrationRefusal(metadata);
    // byte-identical public registrations share one client (public clients hold no secret)
    const digest = !refusal && !badRedirect && raw && metadata?.token_endpoint_auth_method === 'none' && !ctx.get('authorization') ? sha256(raw) : undefined;
    if (digest) {
      const previous = await digests.find(digest);
      const client = typeof previous?.clientId === 'string' ? await holder.provider.Client.find(previous.clientId) : undefined;
      if (client) {
        ctx.status = 201;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = client.metadata();
        log.info({ event: 'client.registration_reused', ...requestFacts(ctx), clientId: client.clientId }, 'identical registration: the registered client is returned');
        audit.record({ event: 'client.registered', outcome: 'success', client: client.clientId, ...requestFacts(ctx), details: { reused: true, authMethod: 'none' } });
        await usage.used(client);
        return;
      }
    }

    if (badRedirect) {
      ctx.status = 400;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'invalid_redirect_uri', error_description: badRedirect };
    } else if (refusal) {
      ctx.status = 400;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'invalid_client_metadata', error_description: refusal };
    } else {
      if (raw) replayBody(ctx, body!);
      await next();
    }

    const answer = ctx.body as { client_id?: unknown; error?: unknown; error_description?: unknown } | undefined;
    if (ctx.status === 201 && typeof answer?.client_id === 'string') {
      log.info({ event: 'client.registered', ...requestFacts(ctx), clientId: answer.client_id }, 'client registered');
      const authMethod = (answer as { token_endpoint_auth_method?: unknown }).token_endpoint_auth_method;
      audit.record({
        event: 'client.registered',
        outcome: 'success',
        client: answer.client_id,
        ...requestFacts(ctx),
        details: { reused: false, ...(typeof authMethod === 'string' ? { authMethod: authMethod.slice(0, 64) } : {}) },
      });
      if (digest) await digests.upsert(digest, { clientId: answer.client_id }, ttl);
    } else if (ctx.status >= 400 && ctx.status < 500) {
      log.info(
        { event: 'client.registration_rejected', ...requestFacts(ctx), error: answer?.error, reason: answer?.error_description },
        'client registration rejected',
      );
      audit.record({
        event: 'client.registration_rejected',
        outcome: 'failure',
        ...requestFacts(ctx),
        details: {
          error: typeof answer?.error === 'string' ? answer.error.slice(0, 64) : `http_${ctx.status}`,
          ...(typeof answer?.error_description === 'string' ? { reason: answer.error_description.slice(0, 512) } : {}),
        },
      });
    }
  };
}

function parseObject(raw: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw.toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('base64url');
}

/** Control characters, whitespace, and invisible or direction-changing marks: never part of a redirect URI we keep. */
const UNSAFE_IN_URI = /[\u0000-\u0020\u007f-\u00a0\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufeff\uffa0]/;

/** Why the metadata's redirect URIs cannot be registered, or undefined. */
function redirectUriRefusal(metadata: Record<string, unknown> | undefined): string | undefined {
  for (const field of ['redirect_uris', 'post_logout_redirect_uris']) {
    const uris = metadata?.[field];
    if (!Array.isArray(uris)) continue;
    if (uris.some((uri) => typeof uri === 'string' && UNSAFE_IN_URI.test(uri))) return `${field} must not contain control, whitespace or invisible characters`;
  }
  const http = Array.isArray(metadata?.redirect_uris) ? plainHttpRedirect(metadata.redirect_uris) : undefined;
  if (http) return `redirect_uris must use https, or http on a loopback address: ${http}`;
  return undefined;
}
