/**
 * A SAML 2.0 identity provider for tests, built from a signing key and nothing else: it
 * reads our AuthnRequest (HTTP-Redirect binding: base64 of deflated XML), answers with a
 * Response whose Assertion it signs with xml-crypto (enveloped signature, exclusive c14n,
 * rsa-sha256) and posts it back to the ACS the request named, from an auto-submitting page
 * as real identity providers do. The same builder makes the forged, tampered, expired and
 * misaddressed answers the refusal tests post directly.
 *
 * It serves on 127.0.0.1 but is addressed as `localhost`: another site than the
 * authorization server's `127.0.0.1`, so the browser's POST to our ACS is really cross-site
 * (and carries no SameSite=Lax cookie of ours).
 */
import { execFileSync } from 'node:child_process';
import { createVerify, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { SignedXml } from 'xml-crypto';

export interface SigningKey {
  /** PEM private key */
  key: string;
  /** PEM self-signed certificate */
  cert: string;
}

/** A new RSA key and a self-signed certificate for it (the openssl CLI). */
export function makeSigningKey(commonName: string): SigningKey {
  const dir = mkdtempSync(join(tmpdir(), 'saml-key-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-subj', `/CN=${commonName}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface AuthnRequestSeen {
  id: string;
  /** AssertionConsumerServiceURL */
  acs: string;
  /** the service provider's entity id */
  issuer: string;
  xml: string;
  /** the raw query string, for checking a Redirect-binding signature */
  query: string;
  sigAlg?: string;
  signature?: string;
}

/** Decodes an AuthnRequest sent with the HTTP-Redirect binding (the URL the browser was sent to). */
export function decodeAuthnRequest(url: string): AuthnRequestSeen {
  const parsed = new URL(url);
  const encoded = parsed.searchParams.get('SAMLRequest');
  if (!encoded) throw new Error(`no SAMLRequest in ${url}`);
  const xml = inflateRawSync(Buffer.from(encoded, 'base64')).toString('utf8');
  const attr = (name: string) => new RegExp(`<(?:\\w+:)?AuthnRequest\\b[^>]*\\s${name}="([^"]*)"`).exec(xml)?.[1];
  const issuer = /<(?:\w+:)?Issuer\b[^>]*>([^<]*)</.exec(xml)?.[1];
  const id = attr('ID');
  const acs = attr('AssertionConsumerServiceURL');
  if (!id || !acs || !issuer) throw new Error(`not an AuthnRequest: ${xml}`);
  const sigAlg = parsed.searchParams.get('SigAlg') ?? undefined;
  const signature = parsed.searchParams.get('Signature') ?? undefined;
  return { id, acs: unescapeXml(acs), issuer: unescapeXml(issuer), xml, query: parsed.search.slice(1), ...(sigAlg ? { sigAlg } : {}), ...(signature ? { signature } : {}) };
}

/** True when a Redirect-binding request's signature verifies with `cert` (over the query as sent). */
export function redirectSignatureValid(request: AuthnRequestSeen, cert: string): boolean {
  if (!request.signature || request.sigAlg !== 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256') return false;
  const signed = request.query
    .split('&')
    .filter((pair) => /^(SAMLRequest|RelayState|SigAlg)=/.test(pair))
    .join('&');
  return createVerify('RSA-SHA256').update(signed).verify(cert, request.signature, 'base64');
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const unescapeXml = (s: string) => s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const samlId = () => `_${randomBytes(16).toString('hex')}`;
const instant = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface ResponseOptions {
  /** the identity provider's entity id (Issuer of the response and the assertion) */
  issuer: string;
  /** Response@InResponseTo; omitted when undefined */
  inResponseTo?: string | undefined;
  /** SubjectConfirmationData@InResponseTo (default: inResponseTo; null: omitted) */
  subjectInResponseTo?: string | null;
  /** Response@Destination and SubjectConfirmationData@Recipient */
  acs: string;
  /** SubjectConfirmationData@Recipient when it should differ from acs */
  recipient?: string;
  audience: string;
  nameId: string;
  nameIdFormat?: string;
  attributes?: Record<string, string[]>;
  /** NotOnOrAfter of the conditions and the subject confirmation (default: in 5 minutes) */
  notOnOrAfter?: Date;
  /** NotBefore of the conditions (default: a minute ago) */
  notBefore?: Date;
  assertionId?: string;
  /** the key signing the assertion (null: unsigned) */
  signAssertion: SigningKey | null;
  /** the key signing the whole response too (default: none) */
  signResponse?: SigningKey | null;
  /** StatusCode value (default Success) */
  status?: string;
}

const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';

/** Signs the element `localName` (the Assertion or the Response) in place, the Signature right after its Issuer. */
function sign(xml: string, localName: 'Assertion' | 'Response', key: SigningKey): string {
  const path = localName === 'Response' ? "/*[local-name(.)='Response']" : "//*[local-name(.)='Assertion']";
  const sig = new SignedXml({ privateKey: key.key, publicCert: key.cert, signatureAlgorithm: RSA_SHA256, canonicalizationAlgorithm: EXC_C14N });
  sig.addReference({ xpath: path, transforms: [ENVELOPED, EXC_C14N], digestAlgorithm: SHA256 });
  sig.computeSignature(xml, { location: { reference: `${path}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

/** A SAML Response (XML) with one Assertion, signed as asked. */
export function buildResponse(o: ResponseOptions): string {
  const now = new Date();
  const notOnOrAfter = instant(o.notOnOrAfter ?? new Date(now.getTime() + 5 * 60_000));
  const notBefore = instant(o.notBefore ?? new Date(now.getTime() - 60_000));
  const subjectInResponseTo = o.subjectInResponseTo === undefined ? o.inResponseTo : (o.subjectInResponseTo ?? undefined);
  const attrs = Object.entries(o.attributes ?? {})
    .map(([name, values]) => `<saml:Attribute Name="${escapeXml(name)}">${values.map((v) => `<saml:AttributeValue>${escapeXml(v)}</saml:AttributeValue>`).join('')}</saml:Attribute>`)
    .join('');
  const assertion =
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${o.assertionId ?? samlId()}" Version="2.0" IssueInstant="${instant(now)}">` +
    `<saml:Issuer>${escapeXml(o.issuer)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="${o.nameIdFormat ?? 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent'}">${escapeXml(o.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData` +
    `${subjectInResponseTo ? ` InResponseTo="${escapeXml(subjectInResponseTo)}"` : ''} Recipient="${escapeXml(o.recipient ?? o.acs)}" NotOnOrAfter="${notOnOrAfter}"/>` +
    `</saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${escapeXml(o.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${instant(now)}" SessionIndex="${samlId()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    (attrs ? `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` : '') +
    `</saml:Assertion>`;
  let xml =
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${samlId()}" Version="2.0" IssueInstant="${instant(now)}" Destination="${escapeXml(o.acs)}"` +
    `${o.inResponseTo ? ` InResponseTo="${escapeXml(o.inResponseTo)}"` : ''}>` +
    `<saml:Issuer>${escapeXml(o.issuer)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${o.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success'}"/></samlp:Status>` +
    assertion +
    `</samlp:Response>`;
  if (o.signAssertion) xml = sign(xml, 'Assertion', o.signAssertion);
  if (o.signResponse) xml = sign(xml, 'Response', o.signResponse);
  return xml;
}

export const encodeResponse = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');

export interface IdpUser {
  nameId: string;
  attributes: Record<string, string[]>;
}

/** The identity provider's web side: `GET /sso` answers every AuthnRequest for `user`. */
export class TestIdp {
  readonly entityId = 'https://idp.example.test/saml';
  readonly requests: AuthnRequestSeen[] = [];
  user: IdpUser = { nameId: 'user-1', attributes: {} };
  /** sign the whole response too (for connections with requireSignedResponse) */
  signResponse = false;
  #server: Server | undefined;
  #port = 0;

  constructor(readonly signing: SigningKey) {}

  /** The SSO URL, on `localhost` (another site than 127.0.0.1). */
  get entryPoint(): string {
    return `http://localhost:${this.#port}/sso`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (req.method !== 'GET' || url.pathname !== '/sso') {
        res.writeHead(404).end();
        return;
      }
      let request: AuthnRequestSeen;
      try {
        request = decodeAuthnRequest(url.href);
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('bad AuthnRequest');
        return;
      }
      this.requests.push(request);
      const xml = buildResponse({
        issuer: this.entityId,
        inResponseTo: request.id,
        acs: request.acs,
        audience: request.issuer,
        nameId: this.user.nameId,
        attributes: this.user.attributes,
        signAssertion: this.signing,
        signResponse: this.signResponse ? this.signing : null,
      });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(
        `<!doctype html><html><head><title>Test IdP</title></head><body>` +
          `<form method="post" action="${escapeXml(request.acs)}"><input type="hidden" name="SAMLResponse" value="${encodeResponse(xml)}"><noscript><button>Continue</button></noscript></form>` +
          `<script>document.forms[0].submit()</script></body></html>`,
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
