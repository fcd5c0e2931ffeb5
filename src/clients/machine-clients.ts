/**
 * Which clients may get tokens without a person — the client credentials grant — and the most
 * such a token may carry. A token without a person has had nobody's consent, so:
 * - a client the operator configured may, up to its configured `scope` (default: its MCP
 *   servers' scopes);
 * - a dynamically registered client only when `registration.clientCredentials` is set, up to
 *   its `scopes`;
 * - a metadata document client only on a domain of `cimd.clientCredentials`, up to that
 *   entry's `scopes`;
 * - never a client that does not authenticate (`token_endpoint_auth_method: none`);
 * - and in every case never a `dangerous` scope or one with an `allow` list, unless that list
 *   names the client (`client:ID`; src/provider/resources.ts `machineScopes`).
 *
 * Enforced three times: at registration (`invalid_client_metadata`), when a metadata document
 * is accepted (the document is refused), and at the token endpoint (`unauthorized_client`).
 */
import type { Client } from 'oidc-provider';
import type { Config } from '../config/schema.js';
import { normalizeHostname } from '../config/uri.js';
import { clientKind } from './kind.js';

export const CLIENT_CREDENTIALS = 'client_credentials';

const UNAUTHENTICATED = 'client_credentials needs client authentication (token_endpoint_auth_method other than none)';

/** What a client may hold without a person: `configured` (its static policy), a ceiling, or nothing. */
export type MachineCeiling = { kind: 'configured' } | { kind: 'ceiling'; scopes: ReadonlySet<string> } | undefined;

export class MachineClients {
  readonly #staticIds: ReadonlySet<string>;
  readonly #registered: ReadonlySet<string> | undefined;
  readonly #domains: readonly { domain: string; scopes: ReadonlySet<string> }[];

  constructor(config: Pick<Config, 'clients' | 'registration' | 'cimd'>) {
    this.#staticIds = new Set(config.clients.map((c) => c.client_id));
    const registered = config.registration.clientCredentials;
    this.#registered = registered ? new Set(registered.scopes) : undefined;
    this.#domains = config.cimd.clientCredentials.map(({ domain, scopes }) => ({ domain, scopes: new Set(scopes) }));
  }

  /** The ceiling of `client` acting for itself; undefined when it may not. */
  ceiling(client: Client): MachineCeiling {
    // a client that does not authenticate proves nothing: anyone may send its id
    if (client.clientAuthMethod === 'none') return undefined;
    switch (clientKind(client, this.#staticIds)) {
      case 'static':
        return { kind: 'configured' };
      case 'dcr':
        return this.#registered ? { kind: 'ceiling', scopes: this.#registered } : undefined;
      case 'cimd': {
        const scopes = this.#documentEntry(client.clientId)?.scopes;
        return scopes ? { kind: 'ceiling', scopes } : undefined;
      }
    }
  }

  /** Why a dynamic registration with this metadata is refused, or undefined. */
  registrationRefusal(metadata: { grant_types?: unknown; token_endpoint_auth_method?: unknown } | undefined): string | undefined {
    const grantTypes = metadata?.grant_types;
    if (!Array.isArray(grantTypes) || !grantTypes.includes(CLIENT_CREDENTIALS)) return undefined;
    if (!this.#registered) {
      return 'client_credentials is not offered to dynamically registered clients (tokens without a person need a client configured by the operator)';
    }
    if (metadata?.token_endpoint_auth_method === 'none') return UNAUTHENTICATED;
    return undefined;
  }

  /** Why a metadata document declaring the client credentials grant is refused, or undefined. */
  documentRefusal(client: Client): string | undefined {
    if (!client.grantTypeAllowed(CLIENT_CREDENTIALS)) return undefined;
    if (!this.#documentEntry(client.clientId)) return `client_credentials is not allowed for documents on ${hostOf(client.clientId) ?? 'its host'} (cimd.clientCredentials)`;
    if (client.clientAuthMethod === 'none') return UNAUTHENTICATED;
    return undefined;
  }

  #documentEntry(clientId: string) {
    const host = hostOf(clientId);
    if (host === undefined) return undefined;
    return this.#domains.find(({ domain }) => host === domain || host.endsWith(`.${domain}`));
  }
}

function hostOf(url: string): string | undefined {
  const hostname = URL.parse(url)?.hostname;
  return hostname === undefined ? undefined : normalizeHostname(hostname);
}
