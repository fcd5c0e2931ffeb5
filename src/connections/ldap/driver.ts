/**
 * The LDAP / Active Directory connection: search-then-bind. The service account (`bindDn`)
 * finds the one entry the typed username names; a second connection binds as that entry with
 * the typed password — the directory's answer is the check, we never see a password hash;
 * the service account then reads the groups. Both connections are closed before the answer.
 *
 * Refused before any bind: an empty password (an "unauthenticated bind", a DN with no
 * password, succeeds on many servers without checking anything — RFC 4513 §5.1.2), a username
 * that is empty, too long, not well-formed Unicode or holds control characters. Anonymous
 * binds are never made. The typed username only ever reaches a filter as an escaped value
 * (./filter.ts).
 *
 * At a refresh (`checkOnRefresh`) the person is looked up again by their directory username
 * (./names.ts); gone, moved out of `userBase`, or now someone else (another entry, another
 * identifier) means no longer active. A directory that cannot be asked throws {@link UpstreamError}: the
 * refresh fails for now and nothing is revoked.
 */
import { timingSafeEqual } from 'node:crypto';
import { FilterParser, InvalidCredentialsError, ResultCodeError } from 'ldapts';
import type { AccountRecord } from '../../../adapters/contract.js';
import type { LdapConnectionConfig } from '../../config/sign-in.js';
import { UpstreamError, type ConnectionDriver } from '../driver.js';
import type { UpstreamIdentity } from '../identity.js';
import { accountIdFor } from '../provision.js';
import type { DriverContext } from '../registry.js';
import { connect, type Directory } from './connect.js';
import { identityOf, subjectOf } from './entry.js';
import { fillFilter, NESTED_GROUPS_FILTER } from './filter.js';
import { findPerson, groupsOf } from './search.js';
import { acceptablePassword, acceptableUsername } from './input.js';
import { DirectoryNames } from './names.js';

export function ldapDriver(config: LdapConnectionConfig, context: DriverContext): ConnectionDriver {
  checkFilters(config);
  const { log } = context;
  const open = new Set<Directory>();
  const names = new DirectoryNames(context.store, config.id, context.config.ttl.grant);

  const unreachable = () => new UpstreamError('ldap_unreachable', `${config.name} could not be reached. Try again in a moment.`);
  const misconfigured = (reason: string) => new UpstreamError(reason, `Sign-in with ${config.name} is not working right now. Try again later, or ask your administrator.`);

  /** Runs `use` on a fresh connection, closed afterwards; directory failures become {@link UpstreamError}. */
  async function withDirectory<T>(step: string, use: (directory: Directory) => Promise<T>): Promise<T> {
    let directory: Directory | undefined;
    try {
      directory = await connect(config);
      open.add(directory);
      return await use(directory);
    } catch (err) {
      if (err instanceof UpstreamError) throw err;
      const e = err as Error;
      const code = err instanceof ResultCodeError ? err.code : undefined;
      log.warn({ event: 'ldap.error', connection: config.id, step, err: { name: e?.name, message: e?.message, ...(code === undefined ? {} : { code }) } }, 'the directory could not be asked');
      if (code === undefined) throw unreachable();
      throw misconfigured(`ldap_${step}_failed`);
    } finally {
      if (directory) {
        open.delete(directory);
        await directory.close();
      }
    }
  }

  /** Binds as the service account; a refusal is a configuration problem, not the person's. */
  async function bindService(directory: Directory): Promise<void> {
    try {
      await directory.client.bind(config.bindDn, config.bindPassword);
    } catch (err) {
      if (err instanceof InvalidCredentialsError) {
        log.error({ event: 'ldap.service_bind_refused', connection: config.id, bindDn: config.bindDn }, 'the directory refused the service account (bindDn, bindPassword)');
        throw misconfigured('ldap_service_bind_refused');
      }
      throw err;
    }
  }

  /** Binds as `dn` with the typed password on its own connection: true when the directory accepts it. */
  async function passwordAccepted(dn: string, password: string): Promise<boolean> {
    return withDirectory('user_bind', async (directory) => {
      try {
        await directory.client.bind(dn, password);
        return true;
      } catch (err) {
        if (!(err instanceof ResultCodeError)) throw err;
        // 49 invalidCredentials (AD adds why: expired, locked, disabled); others (53 unwillingToPerform…) refuse too
        if (!(err instanceof InvalidCredentialsError)) log.info({ event: 'ldap.bind_refused', connection: config.id, code: err.code }, 'the directory refused a person’s bind');
        return false;
      }
    });
  }

  async function authenticate(username: string, password: string): Promise<UpstreamIdentity | undefined> {
    if (!acceptableUsername(username) || !acceptablePassword(password)) return undefined;
    const identity = await withDirectory('search', async (service): Promise<UpstreamIdentity | undefined> => {
      await bindService(service);
      const person = await findPerson(service.client, config, username);
      if ('none' in person) {
        if (person.none === 'ambiguous') log.warn({ event: 'ldap.ambiguous_user', connection: config.id }, 'userFilter matched more than one entry: refused');
        return undefined;
      }
      if (!(await passwordAccepted(person.entry.dn, password))) return undefined;
      const groups = await groupsOf(service.client, config, person.entry, username);
      return identityOf(config, person.entry, groups) as UpstreamIdentity;
    });
    if (identity) {
      // a store that cannot be reached fails the sign-in right after, at provisioning, as such (503)
      await names.remember(accountIdFor(config.id, identity.subject), identity.username ?? username).catch((err: Error) => {
        log.warn({ event: 'ldap.name_not_kept', connection: config.id, err: { name: err?.name, message: err?.message } }, 'could not keep the directory username of an account');
      });
    }
    return identity;
  }

  async function stillActive(account: AccountRecord): Promise<boolean> {
    if (!config.checkOnRefresh) return true;
    const name = (await names.recall(account.id)) ?? account.username;
    if (!acceptableUsername(name)) return false;
    return withDirectory('search', async (directory) => {
      await bindService(directory);
      const person = await findPerson(directory.client, config, name);
      if ('none' in person) return false;
      // the same person, not someone given the username since
      const expected = Buffer.from(account.id);
      const actual = Buffer.from(accountIdFor(config.id, subjectOf(person.entry)));
      return expected.length === actual.length && timingSafeEqual(expected, actual);
    });
  }

  return {
    config,
    authenticate,
    ...(config.checkOnRefresh ? { stillActive } : {}),
    async close() {
      await Promise.allSettled([...open].map((d) => d.close()));
      open.clear();
    },
  };
}

/** A filter template that cannot be parsed stops the start, naming the setting (not every sign-in later). */
function checkFilters(config: LdapConnectionConfig): void {
  const templates: [string, string][] = [['userFilter', config.userFilter]];
  if (config.groups) templates.push(['groups.filter', config.groups.nested ? NESTED_GROUPS_FILTER : config.groups.filter]);
  for (const [setting, template] of templates) {
    try {
      FilterParser.parseString(fillFilter(template, { username: 'x', dn: 'cn=x' }));
    } catch (err) {
      throw new Error(`connections[${config.id}].${setting}: not an LDAP filter (${(err as Error).message.split('.')[0]})`);
    }
  }
}
