/**
 * The configured sign-in connections, each with its driver (./oidc, ./saml, ./ldap), and
 * home-realm discovery: which connection an e-mail address belongs to.
 */
import type { Store } from '../../adapters/contract.js';
import type { AuditLog } from '../audit/events.js';
import type { Config } from '../config/schema.js';
import type { ConnectionConfig } from '../config/sign-in.js';
import type { Logger } from '../observability/logger.js';
import type { RateLimits } from '../http/limits.js';
import type { Render } from '../http/render.js';
import type { ConnectionDriver } from './driver.js';
import { PendingSignIns } from './pending.js';
import { ldapDriver } from './ldap/driver.js';
import { oidcDriver } from './oidc/driver.js';
import { samlDriver } from './saml/driver.js';

/** What every driver may use. */
export interface DriverContext {
  config: Config;
  store: Store;
  /** redirect-based drivers keep their request state here */
  pending: PendingSignIns;
  log: Logger;
  /** where a driver's own routes record refused answers (`login.failed`) */
  audit: AuditLog;
  /** the issuer's path ('' at the root), in front of every route */
  basePath: string;
  /** rate limits for what a driver's own routes receive (a SAML answer counts as a sign-in attempt) */
  limits: RateLimits;
  /** pages a driver's own routes answer with themselves (429) */
  render: Render;
  /** the server's cookie keys, newest first: what a driver keeps sealed at rest is sealed under keys derived from them */
  cookieKeys: readonly string[];
}

type Factory<K extends ConnectionConfig['kind']> = (connection: Extract<ConnectionConfig, { kind: K }>, context: DriverContext) => ConnectionDriver;

const FACTORIES: { [K in ConnectionConfig['kind']]: Factory<K> } = {
  oidc: oidcDriver,
  saml: samlDriver,
  ldap: ldapDriver,
};

export class ConnectionRegistry {
  readonly #drivers = new Map<string, ConnectionDriver>();
  readonly #domains = new Map<string, string>();
  /** the drivers' pending requests, and the hand-off of a finished one to the interaction (src/interactions/connection-sign-in.ts) */
  readonly pending: PendingSignIns;

  constructor(config: Config, context: Omit<DriverContext, 'pending'>) {
    this.pending = new PendingSignIns(context.store, config.ttl.interaction);
    const full: DriverContext = { ...context, pending: this.pending };
    for (const connection of config.connections) {
      const factory = FACTORIES[connection.kind] as Factory<typeof connection.kind>;
      this.#drivers.set(connection.id, factory(connection as never, full));
      for (const domain of connection.domains) this.#domains.set(domain, connection.id);
    }
  }

  /** The driver of connection `id`, enabled or not. */
  get(id: string): ConnectionDriver | undefined {
    return typeof id === 'string' ? this.#drivers.get(id) : undefined;
  }

  /** The enabled connections, in configuration order. */
  enabled(): ConnectionDriver[] {
    return [...this.#drivers.values()].filter((d) => d.config.enabled);
  }

  /** The enabled connection an e-mail address (or a bare domain) belongs to, by `domains`. */
  forEmail(email: string): ConnectionDriver | undefined {
    if (typeof email !== 'string' || email.length > 320) return undefined;
    const at = email.lastIndexOf('@');
    const domain = (at >= 0 ? email.slice(at + 1) : '').trim().toLowerCase().replace(/\.$/, '');
    if (!domain) return undefined;
    const id = this.#domains.get(domain);
    const driver = id ? this.#drivers.get(id) : undefined;
    return driver?.config.enabled ? driver : undefined;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#drivers.values()].map((d) => d.close?.()));
  }
}
