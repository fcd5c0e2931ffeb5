/**
 * The node-saml settings of a connection: one place that says what is checked of an answer.
 * The assertion must always be signed by one of `idpCert` (`requireSignedResponse` asks the
 * whole response to be signed as well); `InResponseTo` must name a pending request of ours
 * (./request-ledger.ts); the audience is our entity id; timestamps are checked with
 * `clockSkew`. What node-saml leaves out (issuer, recipient, destination, status) is checked
 * by ./confirm.ts.
 */
import { ValidateInResponseTo, type CacheProvider, type SamlConfig } from '@node-saml/node-saml';
import type { SamlConnectionConfig } from '../../config/sign-in.js';
import type { SamlUrls } from './urls.js';

export function samlOptions(connection: SamlConnectionConfig, urls: SamlUrls, requestTtlSeconds: number, cacheProvider: CacheProvider): SamlConfig {
  return {
    entryPoint: connection.entryPoint,
    issuer: urls.entityId,
    audience: urls.entityId,
    callbackUrl: urls.acs,
    idpCert: connection.idpCert,
    idpIssuer: connection.idpIssuer,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: connection.requireSignedResponse,
    validateInResponseTo: ValidateInResponseTo.always,
    requestIdExpirationPeriodMs: requestTtlSeconds * 1000,
    cacheProvider,
    acceptedClockSkewMs: connection.clockSkew * 1000,
    // the identity provider picks the NameID format and how people authenticate (MFA included)
    identifierFormat: null,
    disableRequestedAuthnContext: true,
    authnRequestBinding: 'HTTP-Redirect',
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    ...(connection.signRequests ? { privateKey: connection.signRequests.privateKey, publicCert: connection.signRequests.cert } : {}),
  };
}
