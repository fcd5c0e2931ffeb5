/**
 * Client ID metadata documents: a client whose `client_id` is an https URL is described by the
 * JSON document served there (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25 on).
 *
 * oidc-provider's `clientIdMetadataDocument` feature fetches, validates (the document's
 * `client_id` equals the URL, no shared secrets, https URIs) and caches the document. Added
 * here: the operator's domain policy, the fields MCP requires, redirect URIs that are https or
 * loopback http, the guarded fetch (guarded-fetch.ts), the development switch for loopback
 * `http` documents, a limit on fetches per host (`rateLimits.documentFetchesPerHost`), and a
 * log line naming the reason of every refusal.
 */
import Provider, { errors, type Client, type Configuration } from 'oidc-provider';
import type { Context } from 'koa';
// oidc-provider recognises only https client ids; the development switch resolves loopback http ones with the same code
import { resolveClientByMetadataDocument } from 'oidc-provider/lib/helpers/client_id_metadata_document.js';
import type { Config } from '../config/schema.js';
import { isLoopbackHost, normalizeHostname } from '../config/uri.js';
import type { Logger } from '../observability/logger.js';
import { describeWait, retryAfterSeconds, type RateLimits } from '../http/limits.js';
import { guardedFetch } from './guarded-fetch.js';
import type { MachineClients } from './machine-clients.js';
import { plainHttpRedirect } from './loopback-redirects.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';

type CimdConfig = Config['cimd'];

/** Responses a document may be cached for at least (seconds): a cache floor keeps us from re-fetching on every request. */
const MIN_CACHE_SECONDS = 60;

/** Hard cap on anything fetched for a client (a `jwks_uri` may be larger than a metadata document). */
const MAX_FETCH_BYTES = 64 * 1024;

const HTTP_SCHEME = /^https?:/i;

/** Whether `id` names a metadata document this server would fetch (https, or loopback http when allowed). */
export function isMetadataDocumentId(id: unknown, cimd: CimdConfig): id is string {
  if (typeof id !== 'string' || !cimd.enabled) return false;
  // most ids are no URL at all: no parse for them (schemes are case-insensitive)
  if (!HTTP_SCHEME.test(id)) return false;
  const url = URL.parse(id);
  if (!url) return false;
  return url.protocol === 'https:' || (url.protocol === 'http:' && cimd.dangerouslyAllowPrivateNetwork && isLoopbackHost(url.hostname));
}

/** Why the policy refuses to fetch this client id, or undefined when it may be fetched. */
export function policyRefusal(id: string, cimd: CimdConfig): string | undefined {
  const url = URL.parse(id);
  if (!url) return 'client_id is not a URL';
  if (url.pathname === '/' || url.pathname === '') return 'a client_id URL must have a path';
  if (url.search || url.hash) return 'a client_id URL must not have a query or fragment';
  // `evil.example.`, `EVIL.example` and `evil.example` are one host to DNS, so to the policy too
  const host = normalizeHostname(url.hostname);
  if (host === undefined) return `${url.hostname} is not a valid host name`;
  const within = (domain: string) => host === domain || host.endsWith(`.${domain}`);
  if (cimd.denyDomains.some(within)) return `${host} is on the deny list (cimd.denyDomains)`;
  if (cimd.allowDomains.length > 0 && !cimd.allowDomains.some(within)) return `${host} is not on the allow list (cimd.allowDomains)`;
  return undefined;
}

/** Why a resolved document does not describe a usable MCP client, or undefined. */
export function documentRefusal(client: Client, machine: MachineClients): string | undefined {
  if (!client.clientName) return 'the document has no client_name';
  if (client.grantTypeAllowed('authorization_code') && (client.redirectUris ?? []).length === 0) return 'the document has no redirect_uris';
  const http = plainHttpRedirect(client.redirectUris ?? []);
  if (http) return `the document's redirect_uris must use https, or http on a loopback address: ${http}`;
  return machine.documentRefusal(client);
}

/**
 * Thrown by `allowFetch` when the document's host has had its fetches (`429`
 * `temporarily_unavailable`, with `Retry-After`): the client id may be fine, so the answer must
 * not say `invalid_client`.
 */
export class DocumentFetchLimited extends errors.TemporarilyUnavailable {
  override allow_redirect = false;
  constructor(host: string, retryAfterMs: number) {
    super(`too many client metadata documents fetched from ${host}; try again in ${describeWait(retryAfterMs)}`);
    this.status = 429;
    this.statusCode = 429;
  }
}

/** The oidc-provider settings for metadata documents and for every fetch done for clients. */
export function metadataDocumentSettings(
  cimd: CimdConfig,
  log: Logger,
  limits: RateLimits,
  audit: AuditLog,
  machine: MachineClients,
): Pick<Configuration, 'fetch' | 'fetchResponseBodyLimits'> & {
  feature: NonNullable<NonNullable<Configuration['features']>['clientIdMetadataDocument']>;
} {
  const refused = (clientId: string, reason: string) => {
    if (!firstRejection(clientId)) return;
    log.warn({ event: 'cimd.rejected', clientId, reason }, 'client metadata document refused');
    recordRejection(audit, clientId, reason);
  };
  return {
    fetch: guardedFetch({
      allowPrivateNetwork: cimd.dangerouslyAllowPrivateNetwork,
      timeoutMs: cimd.timeout,
      maxBytes: MAX_FETCH_BYTES,
      onRefused: (url, reason) => log.warn({ event: 'client_fetch.refused', url: url.href, reason }, 'fetch for a client refused'),
    }) as Configuration['fetch'],
    fetchResponseBodyLimits: { 'client_id metadata document': cimd.maxBytes, jwks_uri: MAX_FETCH_BYTES, sector_identifier_uri: MAX_FETCH_BYTES },
    feature: {
      enabled: cimd.enabled,
      ack: 'draft-02',
      // runs only when the document is not cached, right before it is fetched
      allowFetch: async (ctx, clientId) => {
        const reason = policyRefusal(clientId, cimd);
        if (reason) {
          refused(clientId, reason);
          return false;
        }
        // normalised as the policy normalised it: one host, one budget
        const host = normalizeHostname(new URL(clientId).hostname)!;
        const decision = await limits.documentFetch(host);
        if (decision.allowed) return true;
        const koa = ctx as unknown as Context | undefined;
        limits.logHit(koa, { limit: 'documentFetchesPerHost', key: 'host', retryAfterMs: decision.retryAfterMs }, { host });
        // within a request oidc-provider answers this error (429); outside one, a plain refusal
        if (!koa) return false;
        koa.set('Retry-After', String(retryAfterSeconds(decision.retryAfterMs)));
        throw new DocumentFetchLimited(host, decision.retryAfterMs);
      },
      allowClient: (_ctx, client) => {
        const reason = documentRefusal(client, machine);
        if (reason) refused(client.clientId, reason);
        return reason === undefined;
      },
      cacheDuration: { min: Math.min(MIN_CACHE_SECONDS, cimd.maxCacheAge), max: cimd.maxCacheAge },
    },
  };
}

/**
 * Wraps `Client.find`: logs why a metadata document was refused (fetch, JSON, validation),
 * and — only with `cimd.dangerouslyAllowPrivateNetwork` — resolves loopback `http` client ids.
 */
export function watchMetadataDocuments(provider: Provider, cimd: CimdConfig, log: Logger, audit: AuditLog): void {
  const Client = provider.Client as unknown as { find(id: string): Promise<Client | undefined> };
  const find = Client.find.bind(Client);
  const findDocument = async (id: string) => {
    try {
      if (id.startsWith('http:')) return (await resolveClientByMetadataDocument(provider, id)) as Client;
      return await find(id);
    } catch (err) {
      if (err instanceof DocumentFetchLimited) throw err; // logged as rate_limit.hit
      const { error, error_description: description, error_detail: detail, cause } = err as {
        error?: string;
        error_description?: string;
        error_detail?: string;
        cause?: { message?: string; status?: number };
      };
      const reason = detail ?? (cause?.message ? `${description}: ${cause.message}` : description) ?? (err as Error).message;
      if ((error !== 'invalid_client' || !/not allowed/.test(description ?? '')) && firstRejection(id)) {
        log.warn({ event: 'cimd.rejected', clientId: id, error, reason }, 'client metadata document refused');
        recordRejection(audit, id, reason ?? error ?? 'refused');
      }
      throw err;
    }
  };
  // a registered client's id goes straight to the engine's own find, without an async frame
  Client.find = (id: string) => (isMetadataDocumentId(id, cimd) ? findDocument(id) : find(id));
}

/** The request being served, if any (oidc-provider's current context). */
const currentRequest = () => Provider.ctx as unknown as Context | undefined;

/**
 * True the first time a request refuses `clientId`: the engine may look a client up more than
 * once per request, and one refusal is one log line and one audit record.
 */
function firstRejection(clientId: string): boolean {
  const ctx = currentRequest();
  if (!ctx) return true;
  const state = ctx.state as { cimdRejected?: Set<string> };
  state.cimdRejected ??= new Set();
  if (state.cimdRejected.has(clientId)) return false;
  state.cimdRejected.add(clientId);
  return true;
}

/** `cimd.rejected` in the audit log, with the request being served. */
function recordRejection(audit: AuditLog, clientId: string, reason: string): void {
  audit.record({
    event: 'cimd.rejected',
    outcome: 'failure',
    client: clientId.slice(0, 512),
    ...requestFacts(currentRequest()),
    details: { reason: reason.slice(0, 512) },
  });
}
