// The one oidc-provider internal we use (src/clients/metadata-documents.ts): the resolver
// behind its clientIdMetadataDocument feature, for loopback http ids in development.
declare module 'oidc-provider/lib/helpers/client_id_metadata_document.js' {
  import type Provider from 'oidc-provider';
  export function resolveClientByMetadataDocument(provider: Provider, id: string): Promise<unknown>;
}
