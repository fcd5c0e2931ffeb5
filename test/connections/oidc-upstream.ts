/**
 * A real upstream OpenID Provider for the OIDC connection tests: a second oidc-provider on
 * 127.0.0.1 (a free port), with a login page of its own (a name to type, "Sign in" or
 * "Cancel"; consent is given with the sign-in), people whose claims the test changes between
 * sign-ins, and two clients for us: one with a secret, one with `private_key_jwt`.
 *
 * Its HTTP server listens first (so our server can be configured with its issuer) and answers
 * 503 until the provider is made by `register`, once our callback URLs are known. Its cookies have names of
 * their own: a browser shares cookies between ports of one host.
 *
 * Every code and token it issues is collected in `secrets`, so tests can show none of them
 * reaches our tokens, logs or audit files.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';

export const UPSTREAM_SECRET = 'an-upstream-client-secret-long-enough';

export interface Person {
  preferred_username?: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  groups?: string[];
  /** how they signed in (the ID token's `amr`) */
  amr?: string[];
  /** claims under other names, released with the `corp` scope (for connections with `claims` set) */
  upn?: string;
  mail?: string;
  display?: string;
  realm_access?: { roles: string[] };
  'https://corp.example/groups'?: string[];
}

export interface Upstream {
  issuer: string;
  /** people by upstream `sub`; change them between sign-ins */
  people: Map<string, Person>;
  /** every authorization code and token the upstream issued */
  secrets: string[];
  /** our private JWK (JSON) for the `private_key_jwt` client `mcp-authz-jwt` */
  privateJwk: string;
  /**
   * Makes the provider, with clients `mcp-authz` (secret) and `mcp-authz-jwt` redirecting to
   * `callbacks`; until then the upstream answers 503. `idTokenClaims` puts the claims in the ID
   * token (otherwise they come from userinfo only). `offlineAccess: false` leaves
   * `offline_access` out of its discovery (no refresh tokens for us).
   */
  register(callbacks: string[], options?: { idTokenClaims?: boolean; offlineAccess?: boolean }): Promise<void>;
  /** every refresh token the upstream issued (also in `secrets`) */
  refreshTokens: string[];
  /** the refresh token requests the upstream answered, and how */
  refreshes: { status: number; error?: string }[];
  /** stops listening (the port refuses connections) until `up` listens on it again */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

const page = (body: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>Upstream sign-in</title></head><body><h1>Corp sign-in</h1>${body}</body></html>`;
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readBody(req: NodeJS.ReadableStream): Promise<URLSearchParams> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return new URLSearchParams(text);
}

export async function startUpstream(): Promise<Upstream> {
  const http: Server = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const unavailable = (_req: unknown, res: ServerResponse) => {
    res.statusCode = 503;
    res.end();
  };
  http.on('request', unavailable);
  const people = new Map<string, Person>();
  const secrets: string[] = [];
  const refreshes: Upstream['refreshes'] = [];
  const refreshTokens: string[] = [];

  const signing = await generateKeyPair('RS256', { extractable: true });
  const signingJwk = { ...(await exportJWK(signing.privateKey)), kid: 'upstream-1', alg: 'RS256', use: 'sig' };
  const ours = await generateKeyPair('ES256', { extractable: true });
  const ourPrivate: JWK = { ...(await exportJWK(ours.privateKey)), kid: 'mcp-authz-1', alg: 'ES256' };
  const ourPublic: JWK = { ...(await exportJWK(ours.publicKey)), kid: 'mcp-authz-1', alg: 'ES256', use: 'sig' };

  return {
    issuer,
    people,
    secrets,
    refreshes,
    refreshTokens,
    privateJwk: JSON.stringify(ourPrivate),
    async register(callbacks, options = {}) {
      const provider = new Provider(issuer, {
        clients: [
          { client_id: 'mcp-authz', client_secret: UPSTREAM_SECRET, redirect_uris: callbacks, token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] },
          {
            client_id: 'mcp-authz-jwt',
            redirect_uris: callbacks,
            token_endpoint_auth_method: 'private_key_jwt',
            grant_types: ['authorization_code', 'refresh_token'],
            token_endpoint_auth_signing_alg: 'ES256',
            jwks: { keys: [ourPublic] },
          },
        ] as never,
        jwks: { keys: [signingJwk] } as never,
        cookies: { keys: ['upstream-cookie-key-for-tests'], names: { session: 'up_session', interaction: 'up_interaction', resume: 'up_resume' } },
        claims: {
          amr: null,
          openid: ['sub'],
          email: ['email', 'email_verified'],
          profile: ['name', 'preferred_username'],
          groups: ['groups'],
          corp: ['upn', 'mail', 'display', 'realm_access', 'https://corp.example/groups'],
        },
        // offline_access (asked with prompt=consent) gives us a refresh token (`checkOnRefresh`)
        scopes: options.offlineAccess === false ? ['openid', 'profile', 'email', 'groups', 'corp'] : ['openid', 'offline_access', 'profile', 'email', 'groups', 'corp'],
        conformIdTokenClaims: !options.idTokenClaims,
        features: { devInteractions: { enabled: false } },
        pkce: { required: () => true },
        interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
        findAccount: (_ctx, sub) => {
          const person = people.get(sub);
          return person ? { accountId: sub, claims: () => ({ sub, ...person, amr: undefined }) } : undefined;
        },
      });
      provider.on('authorization_code.saved', (code: { jti: string }) => secrets.push(code.jti));
      provider.on('access_token.saved', (token: { jti: string }) => secrets.push(token.jti));
      provider.use(async (ctx, next) => {
        const match = /^\/interaction\/([\w-]+)$/.exec(ctx.path);
        if (!match) {
          await next();
          if (ctx.path === '/token' && (ctx as unknown as { oidc?: { params?: { grant_type?: unknown } } }).oidc?.params?.grant_type === 'refresh_token') {
            const body = ctx.body as { error?: string } | undefined;
            refreshes.push({ status: ctx.status, ...(body?.error ? { error: body.error } : {}) });
          }
          // the ID token and any refresh token, as issued
          if (ctx.path === '/token' && ctx.body && typeof ctx.body === 'object') {
            for (const key of ['id_token', 'access_token', 'refresh_token']) {
              const value = (ctx.body as Record<string, unknown>)[key];
              if (typeof value === 'string') secrets.push(value);
              if (key === 'refresh_token' && typeof value === 'string') refreshTokens.push(value);
            }
          }
          return;
        }
        const details = await provider.interactionDetails(ctx.req, ctx.res);
        if (ctx.method === 'GET') {
          ctx.type = 'html';
          ctx.body = page(
            `<form method="post" action="/interaction/${escape(details.uid)}"><label>Name <input name="login" value="${escape(String(details.params.login_hint ?? ''))}" autofocus></label>` +
              `<button type="submit" name="go" value="in">Sign in</button><button type="submit" name="go" value="cancel">Cancel</button></form>`,
          );
          return;
        }
        const form = await readBody(ctx.req);
        if (form.get('go') === 'cancel') {
          ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { error: 'access_denied', error_description: 'the person cancelled' }, { mergeWithLastSubmission: false }));
          return;
        }
        const sub = form.get('login') ?? '';
        const person = people.get(sub);
        if (!person) {
          ctx.status = 401;
          ctx.type = 'html';
          ctx.body = page('<p>No such person.</p>');
          return;
        }
        const grant = new provider.Grant({ accountId: sub, clientId: String(details.params.client_id) });
        grant.addOIDCScope(String(details.params.scope));
        const grantId = await grant.save();
        const returnTo = await provider.interactionResult(
          ctx.req,
          ctx.res,
          { login: { accountId: sub, amr: person.amr ?? ['pwd'] }, consent: { grantId } },
          { mergeWithLastSubmission: false },
        );
        ctx.status = 303;
        ctx.redirect(returnTo);
      });
      http.off('request', unavailable);
      http.on('request', provider.callback());
    },
    async down() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
    async up() {
      await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
    },
    async stop() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
