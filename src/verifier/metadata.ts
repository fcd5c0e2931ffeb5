/**
 * RFC 9728 OAuth 2.0 Protected Resource Metadata for this MCP server, and where it lives:
 * `https://h/.well-known/oauth-protected-resource/<path>` for the resource `https://h/<path>`.
 */
import { wellKnownUrl } from './uri.js';

/** The RFC 9728 document (the fields the verifier publishes). */
export interface ProtectedResourceMetadata {
  /** the configured resource, verbatim: clients compare it with the URL they connected to */
  resource: string;
  authorization_servers: string[];
  scopes_supported?: string[];
  bearer_methods_supported: ['header'];
  resource_name?: string;
  resource_documentation?: string;
}

export interface MetadataInput {
  resource: string;
  issuer: string;
  scopesSupported?: string[] | undefined;
  resourceName?: string | undefined;
  resourceDocumentation?: string | undefined;
}

/** The document for `input`. */
export function protectedResourceMetadata(input: MetadataInput): ProtectedResourceMetadata {
  const doc: ProtectedResourceMetadata = {
    resource: input.resource,
    authorization_servers: [input.issuer],
    bearer_methods_supported: ['header'],
  };
  if (input.scopesSupported?.length) doc.scopes_supported = [...input.scopesSupported];
  if (input.resourceName !== undefined) doc.resource_name = input.resourceName;
  if (input.resourceDocumentation !== undefined) doc.resource_documentation = input.resourceDocumentation;
  return doc;
}

/** The path-aware metadata URL of `resource` (query and fragment dropped). */
export function protectedResourceMetadataUrl(resource: string): URL {
  return wellKnownUrl(resource, 'oauth-protected-resource', { dropTrailingSlash: false });
}

/** Headers of the metadata response: JSON, cacheable for an hour, readable cross-origin. */
export const METADATA_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'application/json',
  'Cache-Control': 'public, max-age=3600',
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'WWW-Authenticate',
};
