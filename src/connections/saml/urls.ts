/**
 * Where a SAML connection lives, as identity providers see it: our entity id (the audience
 * assertions must name), the assertion consumer service they POST to, and our own GET route
 * that finishes the sign-in once the browser is back on a same-site request.
 */
import type { SamlConnectionConfig } from '../../config/sign-in.js';

export interface SamlUrls {
  /** our entity id: `audience`, or the metadata URL */
  entityId: string;
  /** the assertion consumer service (HTTP-POST binding) */
  acs: string;
  /** the path (no origin) of the route that finishes the sign-in: `…/saml/complete` */
  completePath: string;
}

/** `issuer` is the server's issuer, base path included; `basePath` is that path alone. */
export function samlUrls(connection: SamlConnectionConfig, issuer: string, basePath: string): SamlUrls {
  const own = `/connections/${connection.id}/saml`;
  return {
    entityId: connection.audience ?? `${issuer}${own}/metadata`,
    acs: `${issuer}${own}/acs`,
    completePath: `${basePath}${own}/complete`,
  };
}
