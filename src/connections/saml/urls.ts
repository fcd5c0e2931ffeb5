/**
 * Where a SAML connection lives, as identity providers see it: our entity id (the audience
 * assertions must name) and the assertion consumer service they POST to.
 */
import type { SamlConnectionConfig } from '../../config/sign-in.js';

export interface SamlUrls {
  /** our entity id: `audience`, or the metadata URL */
  entityId: string;
  /** the assertion consumer service (HTTP-POST binding) */
  acs: string;
}

/** `issuer` is the server's issuer, base path included. */
export function samlUrls(connection: SamlConnectionConfig, issuer: string): SamlUrls {
  const own = `/connections/${connection.id}/saml`;
  return {
    entityId: connection.audience ?? `${issuer}${own}/metadata`,
    acs: `${issuer}${own}/acs`,
  };
}
