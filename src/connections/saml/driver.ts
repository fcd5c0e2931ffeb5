/** The SAML connection driver — being built (issue 14). */
import type { SamlConnectionConfig } from '../../config/sign-in.js';
import type { ConnectionDriver } from '../driver.js';
import type { DriverContext } from '../registry.js';

export function samlDriver(connection: SamlConnectionConfig, _context: DriverContext): ConnectionDriver {
  throw new Error(`connections[${connection.id}]: saml connections are not available yet`);
}
