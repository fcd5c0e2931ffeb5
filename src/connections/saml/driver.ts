/**
 * The SAML 2.0 connection driver: we are the service provider, SP-initiated sign-in only.
 *
 *   start                                → AuthnRequest to `entryPoint` (HTTP-Redirect binding,
 *                                          signed with `signRequests`), its id kept with the
 *                                          interaction (./request-ledger.ts)
 *   GET  /connections/<id>/saml/metadata → our SP metadata (entity id, ACS, signing cert)
 *   POST /connections/<id>/saml/acs      → the answer, checked (./acs.ts); the person it
 *                                          names finishes the login prompt
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { SAML } from '@node-saml/node-saml';
import type { SamlConnectionConfig } from '../../config/sign-in.js';
import type { ConnectionDriver } from '../driver.js';
import type { DriverContext } from '../registry.js';
import { assertionConsumer } from './acs.js';
import { samlOptions } from './options.js';
import { RequestLedger } from './request-ledger.js';
import { samlUrls } from './urls.js';

/** PEM as it is, or base64 DER wrapped as a PEM certificate. */
function certificatePem(text: string): string {
  if (text.includes('-----BEGIN')) return text;
  const body = text.replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\n${body.replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
}

/** Refuses to start with keys or certificates that cannot be read, naming the setting only. */
function checkKeys(connection: SamlConnectionConfig): void {
  const where = `connections[${connection.id}]`;
  connection.idpCert.forEach((cert, i) => {
    try {
      new X509Certificate(certificatePem(cert));
    } catch {
      throw new Error(`${where}.idpCert${connection.idpCert.length > 1 ? `[${i}]` : ''} is not an X.509 certificate (PEM or base64 DER)`);
    }
  });
  if (connection.signRequests) {
    try {
      createPrivateKey(connection.signRequests.privateKey);
    } catch {
      throw new Error(`${where}.signRequests.privateKey is not a PEM private key`);
    }
    try {
      new X509Certificate(connection.signRequests.cert);
    } catch {
      throw new Error(`${where}.signRequests.cert is not a PEM certificate`);
    }
  }
}

export function samlDriver(connection: SamlConnectionConfig, context: DriverContext): ConnectionDriver {
  checkKeys(connection);
  const urls = samlUrls(connection, context.config.issuer);
  const ttl = context.config.ttl.interaction;
  const saml = (ledger: RequestLedger) => new SAML(samlOptions(connection, urls, ttl, ledger));
  let metadata: string | undefined;

  return {
    config: connection,

    async start(ctx, { uid, clientId }) {
      const url = await saml(new RequestLedger(context.pending, connection.id, { uid, clientId })).getAuthorizeUrlAsync('', undefined, {});
      ctx.set('Cache-Control', 'no-store');
      ctx.status = 303;
      ctx.redirect(url);
    },

    routes(router, complete) {
      router.get('/saml/metadata', (ctx) => {
        metadata ??= saml(new RequestLedger(context.pending, connection.id)).generateServiceProviderMetadata(null, connection.signRequests?.cert ?? null);
        ctx.type = 'application/samlmetadata+xml';
        ctx.body = metadata;
      });

      router.post('/saml/acs', assertionConsumer(connection, context, urls, complete));
    },
  };
}
