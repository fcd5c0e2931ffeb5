/**
 * The person a verified SAML assertion names, as an {@link UpstreamIdentity}: the NameID is
 * the subject (the account is derived from it, so a transient NameID, different at every
 * sign-in, is refused), and the connection's `attributes` say where the username, e-mail
 * address, display name and groups (multi-valued) are. The e-mail address counts as verified
 * only when the connection says this identity provider verifies addresses (`emailVerified`).
 */
import type { Profile } from '@node-saml/node-saml';
import type { SamlConnectionConfig } from '../../config/sign-in.js';
import { upstreamIdentitySchema, type UpstreamIdentity } from '../identity.js';
import { AnswerRefused } from './confirm.js';

const TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';

/** The string values of attribute `name` (one value or several; others ignored). */
function values(profile: Profile, name: string): string[] {
  const attributes = profile.attributes;
  if (!attributes || typeof attributes !== 'object' || !Object.prototype.hasOwnProperty.call(attributes, name)) return [];
  const value = (attributes as Record<string, unknown>)[name];
  const list = Array.isArray(value) ? value : [value];
  return list.filter((v): v is string => typeof v === 'string').map((v) => v.trim()).filter((v) => v.length > 0);
}

export function identityFromProfile(profile: Profile, connection: SamlConnectionConfig): UpstreamIdentity {
  const subject = typeof profile.nameID === 'string' ? profile.nameID.trim() : '';
  if (!subject) throw new AnswerRefused('saml_no_subject', 'assertion without NameID');
  if (profile.nameIDFormat === TRANSIENT) throw new AnswerRefused('saml_transient_nameid', 'a transient NameID names nobody for long');
  const { attributes } = connection;
  const username = attributes.username ? values(profile, attributes.username)[0] : subject;
  const email = values(profile, attributes.email)[0];
  const displayName = values(profile, attributes.name)[0];
  const parsed = upstreamIdentitySchema.safeParse({
    subject,
    ...(username ? { username } : {}),
    ...(email ? { email, emailVerified: connection.emailVerified } : {}),
    ...(displayName ? { displayName } : {}),
    groups: [...new Set(values(profile, attributes.groups))],
  });
  if (!parsed.success) throw new AnswerRefused('saml_invalid_identity', 'attributes out of bounds (length, count)');
  return parsed.data;
}
