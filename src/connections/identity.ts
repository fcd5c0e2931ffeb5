/**
 * What a sign-in connection tells us about a person, whatever its kind (OIDC claims, SAML
 * attributes, LDAP entry), checked by one schema before anything is provisioned from it.
 */
import { z } from 'zod';

export const upstreamIdentitySchema = z.object({
  /** the upstream's stable identifier of the person: OIDC `sub`, SAML NameID, LDAP DN */
  subject: z.string().min(1).max(1024),
  /** the username as the upstream gives it (not yet made into one of ours) */
  username: z.string().min(1).max(512).optional(),
  email: z.string().min(3).max(320).optional(),
  /** true only when the upstream says so (OIDC `email_verified: true`, or a connection configured to vouch) */
  emailVerified: z.boolean().default(false),
  displayName: z.string().min(1).max(256).optional(),
  /** group names or DNs, matched against the connection's `roles.groups` */
  groups: z.array(z.string().min(1).max(1024)).max(1000).default([]),
  /**
   * How the person authenticated, as RFC 8176 values (`pwd`, `otp`, `mfa`, `hwk`, …) when the
   * upstream tells (OIDC `amr`); recorded in our session and tokens next to `fed`.
   */
  amr: z.array(z.string().min(1).max(32)).max(10).default([]),
});

export type UpstreamIdentity = z.output<typeof upstreamIdentitySchema>;
export type UpstreamIdentityInput = z.input<typeof upstreamIdentitySchema>;
