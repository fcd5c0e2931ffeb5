/**
 * The configuration of sign-in beyond local passwords: upstream connections (OIDC, SAML,
 * LDAP/Active Directory), the roles their groups map to, and second factors. Part of the one
 * schema (./schema.ts); docs/configuration.md is generated from the descriptions here.
 *
 * Secrets (client secrets, bind passwords, private keys) are given as a {@link secretSchema}:
 * the value itself, `{ file: PATH }` (a mounted secret) or `{ env: NAME }` (an environment
 * variable). They are read once at start; a missing file or variable stops the start with a
 * message naming the setting, never the value.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { roleSchema } from '../accounts/schema.js';
import { domainNameSchema } from './domain-name.js';

const ENV_NAME = /^[A-Z_][A-Z0-9_]{0,127}$/;

/** A connection id: used in URLs (`/connections/<id>/…`), audit records and `accounts.connection`. */
export const CONNECTION_ID = /^[a-z][a-z0-9-]{0,31}$/;

const roleName = roleSchema;
const domainName = domainNameSchema;

/**
 * A secret: the text itself, `{ file }` or `{ env }`. Parses to the text (a file's surrounding
 * whitespace and final newline removed).
 */
export const secretSchema = z
  .union([
    z.string().min(1),
    z.object({ file: z.string().min(1).describe('A file holding the secret.') }).strict(),
    z.object({ env: z.string().regex(ENV_NAME, 'an environment variable name such as LDAP_BIND_PASSWORD') }).strict(),
  ])
  .transform((value, ctx) => {
    if (typeof value === 'string') return value;
    if ('env' in value) {
      const text = process.env[value.env];
      if (text === undefined || text.trim() === '') {
        ctx.addIssue({ code: 'custom', message: `the environment variable ${value.env} is not set` });
        return z.NEVER;
      }
      return text.trim();
    }
    let text: string;
    try {
      text = readFileSync(value.file, 'utf8').trim();
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `cannot read ${value.file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})` });
      return z.NEVER;
    }
    if (text === '') {
      ctx.addIssue({ code: 'custom', message: `${value.file} is empty` });
      return z.NEVER;
    }
    return text;
  });

const httpsUrl = (what: string) =>
  z
    .string()
    .refine((v) => URL.canParse(v), 'must be an absolute URL')
    .refine((v) => {
      if (!URL.canParse(v)) return true;
      const url = new URL(v);
      return url.protocol === 'https:' || (url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname));
    }, 'must be https (http only on a loopback host)')
    .describe(what);

/** What every connection kind shares. */
const common = {
  id: z
    .string()
    .regex(CONNECTION_ID, 'a lowercase letter then up to 31 lowercase letters, digits or "-"')
    .describe('Identifier of the connection, in its URLs (`/connections/<id>/…`), audit records and the accounts it provisions. Never change it: accounts are bound to it.'),
  name: z.string().min(1).max(100).describe('Shown on the sign-in page: "Sign in with <name>".'),
  enabled: z
    .boolean()
    .default(true)
    .describe(
      'When false, nobody signs in through it, its accounts cannot refresh tokens, and at start every grant of its accounts is revoked (published on the revocation feed).',
    ),
  domains: z
    .array(domainName)
    .default([])
    .describe('Home-realm discovery: a person who types an e-mail address on one of these domains (or gives it as `login_hint`) goes straight to this connection.'),
  link: z
    .enum(['never', 'username', 'verified_email'])
    .default('never')
    .describe(
      'Whether a person from this connection may sign in to an existing account of ours that this connection did not create: `never` (default: the sign-in is refused when the name is taken), `username` (the upstream username is trusted to be the same person as the account of that name), `verified_email` (only when the upstream says the e-mail address is verified and an account is named by it). An unverified e-mail address never links.',
    ),
  roles: z
    .object({
      default: z.array(roleName).max(32).default([]).describe('Roles every person from this connection gets.'),
      groups: z
        .record(z.string().min(1).max(512), z.array(roleName).max(32))
        .default({})
        .describe('Upstream group (OIDC claim value, SAML attribute value, LDAP group DN or name) → our roles. Groups not listed give none.'),
    })
    .strict()
    .default({ default: [], groups: {} })
    .describe("Roles from upstream groups, set again at every sign-in (the scopes' `allow` lists name roles)."),
} as const;

const claimName = (def: string, what: string) => z.string().min(1).max(128).default(def).describe(what);

export const oidcConnectionSchema = z
  .object({
    kind: z.literal('oidc'),
    ...common,
    issuer: httpsUrl('The upstream OpenID Provider, found by its discovery document (`/.well-known/openid-configuration`).'),
    clientId: z.string().min(1).max(255).describe('Our client id at the upstream provider.'),
    clientSecret: secretSchema.optional().describe('Our client secret there (`client_secret_basic`); a value, `{ file }` or `{ env }`.'),
    privateKey: secretSchema
      .optional()
      .describe('A private JWK (JSON) with `kid` and `alg`, to authenticate with `private_key_jwt` instead of a secret; a value, `{ file }` or `{ env }`.'),
    scopes: z.array(z.string().min(1)).default(['openid', 'profile', 'email']).describe('Scopes asked of the upstream provider (`openid` is always added).'),
    claims: z
      .object({
        username: claimName('preferred_username', 'Claim holding the username (falls back to `email`, then `sub`).'),
        email: claimName('email', 'Claim holding the e-mail address (`email_verified` says if it is verified).'),
        name: claimName('name', 'Claim holding the display name.'),
        groups: claimName('groups', 'Claim holding the groups (an array of strings, or one string).'),
      })
      .strict()
      .default({ username: 'preferred_username', email: 'email', name: 'name', groups: 'groups' })
      .describe('Which ID token / userinfo claims are read.'),
    checkOnRefresh: z
      .boolean()
      .default(true)
      .describe(
        "Ask the provider again when a person's refresh token is used: at sign-in a refresh token is asked of it (the `offline_access` scope, when its discovery lists it) and kept encrypted; at each refresh of ours it is used there. Refused (`invalid_grant`: the person removed or disabled, or their grant revoked there), our refresh is refused and their grants revoked; the provider unreachable, our refresh answers 503 and nothing is revoked. A provider that issues no refresh token cannot be asked: refreshes are allowed and a warning logged.",
      ),
    promptConsent: z
      .boolean()
      .default(true)
      .describe(
        'With `checkOnRefresh`, send `prompt=consent` along with `offline_access`, as OpenID Connect Core §11 asks (some providers, oidc-provider among them, issue no refresh token without it); the provider then asks the person at every sign-in instead of using its session silently. Set false for a provider that issues refresh tokens without it.',
      ),
  })
  .strict()
  .refine((c) => (c.clientSecret === undefined) !== (c.privateKey === undefined), {
    message: 'set clientSecret or privateKey (one of them)',
    path: ['clientSecret'],
  });

export const samlConnectionSchema = z
  .object({
    kind: z.literal('saml'),
    ...common,
    entryPoint: httpsUrl("The identity provider's single sign-on URL (HTTP-Redirect binding)."),
    idpIssuer: z.string().min(1).max(1024).describe("The identity provider's entity id: the `Issuer` its responses must carry."),
    idpCert: z
      .union([secretSchema, z.array(secretSchema).min(1)])
      .describe("The identity provider's signing certificate(s), PEM or base64 DER; several while it rolls over. A value, `{ file }` or `{ env }`.")
      .transform((v) => (Array.isArray(v) ? v : [v])),
    audience: z.string().min(1).max(1024).optional().describe('Our entity id, which assertions must be addressed to. Default: `<issuer>/connections/<id>/saml/metadata`.'),
    signRequests: z
      .object({
        privateKey: secretSchema.describe('PEM private key signing our AuthnRequests.'),
        cert: secretSchema.describe('Its certificate (PEM), published in our metadata.'),
      })
      .strict()
      .optional()
      .describe('Sign AuthnRequests (some identity providers require it).'),
    requireSignedResponse: z
      .boolean()
      .default(false)
      .describe('Require the whole response to be signed as well. The assertion must always be signed: an unsigned assertion is refused whatever this says.'),
    clockSkew: z.number().int().min(0).max(300).default(60).describe('Seconds of clock difference tolerated on `NotBefore`/`NotOnOrAfter`.'),
    attributes: z
      .object({
        username: z.string().min(1).max(256).optional().describe('Attribute holding the username. Default: the `NameID`.'),
        email: z.string().min(1).max(256).default('email').describe('Attribute holding the e-mail address.'),
        name: z.string().min(1).max(256).default('displayName').describe('Attribute holding the display name.'),
        groups: z.string().min(1).max(256).default('groups').describe('Attribute holding the groups (multi-valued).'),
      })
      .strict()
      .default({ email: 'email', name: 'displayName', groups: 'groups' })
      .describe('Which assertion attributes are read.'),
    emailVerified: z
      .boolean()
      .default(false)
      .describe('Treat the e-mail attribute as verified (for `link: verified_email`): only when this identity provider verifies addresses itself.'),
  })
  .strict();

export const ldapConnectionSchema = z
  .object({
    kind: z.literal('ldap'),
    ...common,
    url: z
      .string()
      .regex(/^ldaps?:\/\/[^\s/]+\/?$/, 'an ldap:// or ldaps:// URL such as ldaps://dc1.corp.example:636')
      .describe('The directory server: `ldaps://` (TLS from the start) or `ldap://` (with `startTls`, or on loopback).'),
    startTls: z.boolean().default(false).describe('Upgrade an `ldap://` connection with StartTLS before any bind.'),
    tls: z
      .object({
        ca: secretSchema.optional().describe("PEM certificate(s) of the CA that signed the directory's certificate (default: the system CAs)."),
        rejectUnauthorized: z.boolean().default(true).describe('Verify the server certificate. Never false outside a test.'),
      })
      .strict()
      .default({ rejectUnauthorized: true })
      .describe('TLS for `ldaps://` and StartTLS.'),
    bindDn: z.string().min(1).max(1024).describe('The service account that searches for people (search-then-bind).'),
    bindPassword: secretSchema.describe('Its password; a value, `{ file }` or `{ env }`.'),
    userBase: z.string().min(1).max(1024).describe('Where people are searched, e.g. `ou=people,dc=corp,dc=example`.'),
    userFilter: z
      .string()
      .min(3)
      .max(1024)
      .refine((f) => f.includes('{username}'), 'must contain {username}')
      .default('(uid={username})')
      .describe('Filter finding one person; `{username}` is replaced by what they typed, escaped (RFC 4515). Active Directory: `(sAMAccountName={username})`.'),
    attributes: z
      .object({
        username: z.string().min(1).max(128).default('uid').describe('Attribute holding the username (AD: `sAMAccountName`).'),
        email: z.string().min(1).max(128).default('mail').describe('Attribute holding the e-mail address.'),
        name: z.string().min(1).max(128).default('cn').describe('Attribute holding the display name (AD: `displayName`).'),
      })
      .strict()
      .default({ username: 'uid', email: 'mail', name: 'cn' })
      .describe('Which attributes of the person are read.'),
    groups: z
      .object({
        base: z.string().min(1).max(1024).describe('Where groups are searched.'),
        filter: z
          .string()
          .min(3)
          .max(1024)
          .default('(member={dn})')
          .describe(
            "Filter finding the groups of a person; `{dn}` is their DN and `{username}` their `attributes.username` value (both escaped). `(memberUid={username})` for posixGroup. The person entry's `memberOf` values count too.",
          ),
        nested: z
          .boolean()
          .default(false)
          .describe(
            'Active Directory only: include nested groups, by searching `(member:1.2.840.113556.1.4.1941:={dn})` (the `LDAP_MATCHING_RULE_IN_CHAIN` rule) instead of `filter`. OpenLDAP does not support it.',
          ),
        nameAttribute: z.string().min(1).max(128).default('cn').describe('Attribute naming a group in `roles.groups` (the DN works too).'),
      })
      .strict()
      .optional()
      .describe('Group membership, for `roles.groups`. Without it, people get `roles.default` only.'),
    checkOnRefresh: z
      .boolean()
      .default(true)
      .describe('Look the person up again when their refresh token is used: removed or moved out of `userBase`, the refresh is refused and their grants revoked.'),
    timeout: z.number().int().min(100).max(60000).default(5000).describe('Milliseconds an LDAP operation may take, connection included.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const url = URL.canParse(c.url) ? new URL(c.url) : undefined;
    if (!url) return;
    const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname.toLowerCase());
    if (url.protocol === 'ldap:' && !c.startTls && !loopback) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'ldap:// sends passwords in the clear: use ldaps:// or set startTls: true (plain ldap:// only on a loopback host)' });
    }
    if (url.protocol === 'ldaps:' && c.startTls) {
      ctx.addIssue({ code: 'custom', path: ['startTls'], message: 'startTls is for ldap:// URLs; ldaps:// is TLS from the start' });
    }
    if (c.groups?.nested && c.groups.filter !== '(member={dn})') {
      ctx.addIssue({ code: 'custom', path: ['groups', 'filter'], message: 'nested: true searches (member:1.2.840.113556.1.4.1941:={dn}); leave filter unset' });
    }
  });

export const connectionSchema = z.discriminatedUnion('kind', [oidcConnectionSchema, samlConnectionSchema, ldapConnectionSchema]);

export const connectionsSchema = z
  .array(connectionSchema)
  .default([])
  .refine((list) => new Set(list.map((c) => c.id)).size === list.length, 'connection ids must be unique')
  .refine((list) => {
    const domains = list.flatMap((c) => c.domains);
    return new Set(domains).size === domains.length;
  }, 'a domain belongs to one connection at most')
  .describe('Upstream sign-in connections: OpenID Connect providers, SAML 2.0 identity providers and LDAP/Active Directory servers. See docs/enterprise.md.');

export const localSignInSchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('Offer sign-in with local accounts (username and password). Turn off when everyone signs in through a connection.'),
  })
  .strict()
  .default({ enabled: true })
  .describe('Local accounts (`mcp-authz user add`).');

export const secondFactorSchema = z
  .object({
    requireForRoles: z
      .array(roleName)
      .default([])
      .describe(
        'People with any of these roles must use a second factor at sign-in (and enrol one there if they have none). Checked at every authorization request, not only at sign-in: a session without a second factor (the role given later) signs in again with one.',
      ),
    requireForClients: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Authorizations for these client ids need a second factor. Checked at every authorization request, not only at sign-in: a session signed in without one (through another client) signs in again with one.',
      ),
    dangerousScopes: z
      .enum(['off', 'if-enrolled', 'always'])
      .default('if-enrolled')
      .describe(
        'Step-up: a consent that grants a `dangerous` scope asks for the second factor when the session has none — `if-enrolled` (default) when the person has one, `always` (people without one must enrol first), or `off`.',
      ),
    totpIssuer: z.string().min(1).max(64).default('mcp-authz').describe('The name authenticator apps show next to the account (and the passkey relying party\'s name).'),
    passkeys: z.boolean().default(true).describe('Offer passkeys (WebAuthn) as a second factor. WebAuthn needs the issuer on a domain name (not an IP address) over https, or `localhost`.'),
  })
  .strict()
  .default({ requireForRoles: [], requireForClients: [], dangerousScopes: 'if-enrolled', totpIssuer: 'mcp-authz', passkeys: true })
  .describe(
    'Second factors at sign-in and for consents to dangerous scopes: TOTP authenticator apps, passkeys (WebAuthn; the issuer\'s host is the relying party) and recovery codes, which people manage on their sign-in security page (`/account/security`). A person with a factor is always asked for it after the first factor, unless an upstream connection already reported one (`amr` `mfa`, `otp` or `hwk`). ID tokens and JWT access tokens carry `amr` and `acr`: `urn:mcp-authz:acr:mfa` after a second factor, else `urn:mcp-authz:acr:pwd`; a client that sends `acr_values=urn:mcp-authz:acr:mfa` gets a sign-in with a second factor.',
  );

export type ConnectionConfig = z.output<typeof connectionSchema>;
export type OidcConnectionConfig = z.output<typeof oidcConnectionSchema>;
export type SamlConnectionConfig = z.output<typeof samlConnectionSchema>;
export type LdapConnectionConfig = z.output<typeof ldapConnectionSchema>;
export type SecondFactorConfig = z.output<typeof secondFactorSchema>;
