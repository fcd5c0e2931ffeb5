/**
 * The token endpoint's own check on the client credentials grant (src/clients/machine-clients.ts):
 * a client that may not act without a person is `unauthorized_client`, whatever its metadata
 * says — registration and metadata document checks refuse such clients earlier, this holds
 * should one get past them (a client registered before the policy changed, a cached document).
 *
 * Runs inside the engine, right before the grant's handler: the client has authenticated and
 * oidc-provider has checked that its metadata allows the grant (src/provider/grant-handlers.ts).
 */
import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { wrapGrantHandler } from './grant-handlers.js';
import { CLIENT_CREDENTIALS, type MachineClients } from '../clients/machine-clients.js';

export function guardClientCredentials(provider: Provider, machine: MachineClients): void {
  wrapGrantHandler(provider, CLIENT_CREDENTIALS, (handler) => (ctx: KoaContextWithOIDC) => {
    // no async frame of its own: a refusal thrown here reaches the engine's await as a rejection would
    const client = ctx.oidc.client;
    if (!client || !machine.ceiling(client)) {
      throw new errors.UnauthorizedClient('this client may not get tokens without a person (client_credentials)');
    }
    return handler(ctx);
  });
}
