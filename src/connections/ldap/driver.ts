/** The LDAP connection driver — being built (issue 14). */
import type { LdapConnectionConfig } from '../../config/sign-in.js';
import type { ConnectionDriver } from '../driver.js';
import type { DriverContext } from '../registry.js';

export function ldapDriver(connection: LdapConnectionConfig, _context: DriverContext): ConnectionDriver {
  throw new Error(`connections[${connection.id}]: ldap connections are not available yet`);
}
