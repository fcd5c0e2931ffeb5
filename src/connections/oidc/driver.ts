/** The OIDC connection driver — being built (issue 14). */
import type { OidcConnectionConfig } from '../../config/sign-in.js';
import type { ConnectionDriver } from '../driver.js';
import type { DriverContext } from '../registry.js';

export function oidcDriver(connection: OidcConnectionConfig, _context: DriverContext): ConnectionDriver {
  throw new Error(`connections[${connection.id}]: oidc connections are not available yet`);
}
