/**
 * The checks of a SAML answer that node-saml does not make, on what it verified:
 *   - the assertion's `Issuer` is the identity provider's entity id (node-saml checks it of
 *     logout messages only);
 *   - a bearer `SubjectConfirmation` whose data names our ACS as `Recipient`, the request as
 *     `InResponseTo`, and a `NotOnOrAfter` still in the future (within `clockSkew`) — the
 *     Web Browser SSO profile's rules (SAML profiles §4.1.4.2);
 *   - the response's `Status` is Success, its `Destination` (when given) our ACS and its
 *     `Issuer` (when given) the identity provider.
 * Returns the assertion's ID and how long it stays valid, for the replay check.
 */
import { childElements, parseXml } from './xml-dom.js';

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';

/** A refusal of a well-formed but wrong answer; `reason` goes to the audit record. */
export class AnswerRefused extends Error {
  override readonly name = 'AnswerRefused';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** The xml2js shape node-saml gives of the verified assertion (`profile.getAssertion()`). */
type Node = { $?: Record<string, string | undefined>; _?: string } & { [child: string]: unknown };

export interface Expected {
  idpIssuer: string;
  acs: string;
  inResponseTo: string;
  clockSkewMs: number;
  now?: number;
}

export interface Confirmed {
  assertionId: string;
  /** epoch ms after which the assertion is no longer accepted */
  validUntil: number;
}

const children = (node: Node | undefined, name: string): Node[] => {
  const value = node?.[name];
  return Array.isArray(value) ? (value as Node[]) : [];
};
const text = (node: Node | undefined): string | undefined => (typeof node?._ === 'string' ? node._.trim() : undefined);
const instant = (value: string | undefined): number | undefined => {
  if (typeof value !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
};

/** Checks the verified assertion (xml2js, from node-saml). */
export function confirmAssertion(parsed: unknown, expected: Expected): Confirmed {
  const now = expected.now ?? Date.now();
  const assertion = (parsed as { Assertion?: Node } | undefined)?.Assertion;
  if (!assertion) throw new AnswerRefused('saml_invalid_response', 'no assertion');
  const id = assertion.$?.ID;
  if (typeof id !== 'string' || id.length === 0 || id.length > 256) throw new AnswerRefused('saml_invalid_response', 'assertion without ID');
  if (text(children(assertion, 'Issuer')[0]) !== expected.idpIssuer) throw new AnswerRefused('saml_wrong_issuer', 'assertion issuer is not the identity provider');

  let validUntil: number | undefined;
  let recipientSeen = false;
  for (const confirmation of children(children(assertion, 'Subject')[0], 'SubjectConfirmation')) {
    if (confirmation.$?.Method !== BEARER) continue;
    for (const data of children(confirmation, 'SubjectConfirmationData')) {
      const attrs = data.$ ?? {};
      if (attrs.Recipient !== expected.acs) continue;
      recipientSeen = true;
      if (attrs.InResponseTo !== expected.inResponseTo) continue;
      const notOnOrAfter = instant(attrs.NotOnOrAfter);
      if (notOnOrAfter === undefined || now - expected.clockSkewMs >= notOnOrAfter) continue;
      const notBefore = attrs.NotBefore === undefined ? undefined : instant(attrs.NotBefore);
      if (attrs.NotBefore !== undefined && (notBefore === undefined || now + expected.clockSkewMs < notBefore)) continue;
      validUntil = Math.max(validUntil ?? 0, notOnOrAfter + expected.clockSkewMs);
    }
  }
  if (validUntil === undefined) {
    throw recipientSeen
      ? new AnswerRefused('saml_invalid_confirmation', 'no bearer confirmation for this request still valid')
      : new AnswerRefused('saml_wrong_recipient', 'no bearer confirmation naming our ACS');
  }
  const conditionsEnd = instant(children(assertion, 'Conditions')[0]?.$?.NotOnOrAfter);
  if (conditionsEnd !== undefined) validUntil = Math.min(validUntil, conditionsEnd + expected.clockSkewMs);
  return { assertionId: id, validUntil };
}

/** Checks the response around the assertion (its status, destination and issuer). */
export function confirmResponse(xml: string, expected: Pick<Expected, 'idpIssuer' | 'acs'>): void {
  const response = parseXml(xml);
  if (!response || response.localName !== 'Response' || response.namespaceURI !== PROTOCOL) throw new AnswerRefused('saml_invalid_response', 'not a SAML response');
  const destination = response.getAttribute('Destination');
  if (destination && destination !== expected.acs) throw new AnswerRefused('saml_wrong_recipient', 'response destination is not our ACS');
  const issuer = childElements(response, ASSERTION, 'Issuer')[0];
  if (issuer && (issuer.textContent ?? '').trim() !== expected.idpIssuer) throw new AnswerRefused('saml_wrong_issuer', 'response issuer is not the identity provider');
  const status = childElements(response, PROTOCOL, 'Status')[0];
  const code = status ? childElements(status, PROTOCOL, 'StatusCode')[0]?.getAttribute('Value') : undefined;
  if (code !== SUCCESS) throw new AnswerRefused('saml_idp_refused', 'response status is not Success');
}
