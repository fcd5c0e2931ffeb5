/**
 * The MCP servers (resources) this server issues tokens for, and which of them each
 * client may ask for. Only configured resources ever become a token audience: anything
 * else is `invalid_target` (never "allow any resource").
 */
import type { Config, ResourceConfig } from '../config/schema.js';
import { hasUserinfo, tryCanonicalResourceUri } from '../config/uri.js';
import { ACCOUNT_CLIENT_ID } from './account-client.js';

/** A signed-in person, as scope policy (`scopes[…].allow`) sees them. */
export interface Person {
  username: string;
  roles: readonly string[];
}

/** What one client may be granted: `undefined` means "no restriction". */
export interface ClientPolicy {
  resources?: ReadonlySet<string>;
  scopes?: ReadonlySet<string>;
}

export class ResourceRegistry {
  /** by canonical URI and by canonical alias */
  readonly #byUri = new Map<string, ResourceConfig>();
  readonly #policies = new Map<string, ClientPolicy>();
  readonly #default: string | undefined;

  constructor(config: Pick<Config, 'resources' | 'clients' | 'defaultResource'>) {
    for (const resource of config.resources) {
      this.#byUri.set(resource.uri, resource);
      for (const alias of resource.aliases) this.#byUri.set(alias, resource);
    }
    this.#default = config.defaultResource;
    for (const client of config.clients) {
      this.#policies.set(client.client_id, {
        ...(client.resources ? { resources: new Set(client.resources) } : {}),
        ...(client.scope ? { scopes: new Set(client.scope.split(' ')) } : {}),
      });
    }
    // the account pages' client signs people in, nothing more: no MCP server, no scope of one
    this.#policies.set(ACCOUNT_CLIENT_ID, { resources: new Set(), scopes: new Set() });
  }

  get all(): ResourceConfig[] {
    return [...new Set(this.#byUri.values())];
  }

  /**
   * Looks a resource indicator up after canonicalising it (scheme/host case, default port,
   * trailing slash), aliases included. An indicator with a fragment (RFC 8707 §2 forbids one)
   * or with userinfo names no MCP server, whatever follows: it is `invalid_target`.
   */
  find(indicator: string): ResourceConfig | undefined {
    // already canonical (what clients send, and what the engine hands back): no URL to parse.
    // The keys are canonical forms (no fragment, no userinfo) and canonicalising is idempotent
    const exact = this.#byUri.get(indicator);
    if (exact) return exact;
    if (indicator.includes('#') || hasUserinfo(indicator)) return undefined;
    const uri = tryCanonicalResourceUri(indicator);
    return uri === undefined ? undefined : this.#byUri.get(uri);
  }

  policyFor(clientId: string): ClientPolicy {
    return this.#policies.get(clientId) ?? {};
  }

  mayUse(clientId: string, resource: ResourceConfig): boolean {
    const { resources } = this.policyFor(clientId);
    return !resources || resources.has(resource.uri);
  }

  /** The scopes of `resource` that `clientId` may ever hold, in declaration order. */
  allowedScopes(clientId: string, resource: ResourceConfig): string[] {
    const { scopes } = this.policyFor(clientId);
    return Object.keys(resource.scopes).filter((scope) => !scopes || scopes.has(scope));
  }

  /** Whether `person` may be granted `scope` of `resource` under its `allow` list (no list: anyone; `client:` entries name no person). */
  personMayHave(resource: ResourceConfig, scope: string, person: Person): boolean {
    const allow = resource.scopes[scope]?.allow;
    if (!allow) return true;
    return allow.some((entry) => entry === `user:${person.username}` || (entry.startsWith('role:') && person.roles.includes(entry.slice('role:'.length))));
  }

  /**
   * Whether `clientId`, acting for itself (client credentials, no person), may hold `scope` of
   * `resource`: only when the scope's `allow` list names it, or when the scope has no list and
   * is not dangerous. A person's consent is what lets anything else be granted.
   */
  clientMayHaveAlone(resource: ResourceConfig, scope: string, clientId: string): boolean {
    const policy = resource.scopes[scope];
    if (!policy) return false;
    if (policy.allow) return policy.allow.includes(`client:${clientId}`);
    return !policy.dangerous;
  }

  /**
   * The scopes of `resource` a token without a person may carry for `clientId`: its client
   * policy, within `ceiling` (for clients the operator did not configure), and only those
   * scope policy lets a client hold alone.
   */
  machineScopes(clientId: string, resource: ResourceConfig, ceiling?: ReadonlySet<string>): string[] {
    return this.allowedScopes(clientId, resource).filter((scope) => (!ceiling || ceiling.has(scope)) && this.clientMayHaveAlone(resource, scope, clientId));
  }

  /** The scopes of `resource` a token for `person` through `clientId` may carry: client policy and scope policy both. */
  grantableScopes(clientId: string, resource: ResourceConfig, person: Person): string[] {
    return this.allowedScopes(clientId, resource).filter((scope) => this.personMayHave(resource, scope, person));
  }

  /** The lifetime of an access token for `resource` carrying `scopes`: the shortest any of them asks for. */
  accessTokenTtl(resource: ResourceConfig, scopes: readonly string[]): number {
    return Math.min(resource.accessTokenTtl, ...scopes.map((scope) => resource.scopes[scope]?.accessTokenTtl ?? Infinity));
  }

  /** Whether `scope` is marked dangerous on `resource`. */
  isDangerous(resource: ResourceConfig, scope: string): boolean {
    return resource.scopes[scope]?.dangerous === true;
  }

  /**
   * The MCP server a request without `resource` is for: the configured default if this client
   * may use it, else the client's only usable server; undefined when there is no single choice.
   */
  defaultFor(clientId: string): ResourceConfig | undefined {
    const usable = this.all.filter((resource) => this.mayUse(clientId, resource));
    const configured = this.#default === undefined ? undefined : usable.find((r) => r.uri === this.#default);
    return configured ?? (usable.length === 1 ? usable[0] : undefined);
  }

  /** Every scope name any resource declares (for discovery). */
  get scopeNames(): string[] {
    return [...new Set(this.all.flatMap((r) => Object.keys(r.scopes)))];
  }
}
