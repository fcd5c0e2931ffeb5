/**
 * How a client came to be known — configured by the operator, described by its own client
 * ID metadata document, or registered dynamically — and what a person is told about it.
 */
import type { Client } from 'oidc-provider';
import type { ClientKind } from '../../adapters/contract.js';

export function clientKind(client: Client, staticIds: ReadonlySet<string>): ClientKind {
  if (staticIds.has(client.clientId)) return 'static';
  if ((client as Client & { clientIdMetadataDocument?: boolean }).clientIdMetadataDocument) return 'cimd';
  return 'dcr';
}

/** The line a consent page shows under the client's (self-asserted) name. */
export function clientProvenance(client: Client, kind: ClientKind): string {
  switch (kind) {
    case 'static':
      return 'registered by your administrator';
    case 'cimd':
      return `identified by ${new URL(client.clientId).host}`;
    case 'dcr':
      return 'registered dynamically (not verified)';
  }
}
