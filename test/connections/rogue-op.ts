/**
 * A hand-written OpenID Provider on 127.0.0.1 that answers the authorization code flow
 * correctly (checks our client secret, the code, the redirect URI and the PKCE verifier) —
 * except for the one defect the test sets: an ID token with the wrong nonce, audience or
 * issuer, signed by another key or not at all, expired, missing; a mixed-up `iss` in the
 * authorization response; userinfo about someone else. What a hostile or broken upstream
 * could send, over real HTTP, to show our connection refuses each.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export const ROGUE_CLIENT = 'mcp-authz';
export const ROGUE_SECRET = 'the-rogue-client-secret-long-enough';

export type Defect =
  | 'none'
  | 'wrong-nonce'
  | 'wrong-audience'
  | 'wrong-issuer'
  | 'foreign-key'
  | 'unsigned'
  | 'expired'
  | 'no-id-token'
  | 'mixed-up-response-iss'
  | 'userinfo-about-someone-else';

export interface Rogue {
  issuer: string;
  /** what the next answers get wrong */
  defect: Defect;
  /** the `sub` of the next ID token */
  subject: string;
  /** the next ID token's other claims (userinfo answers the same) */
  claims: Record<string, unknown>;
  /** the query of the last authorization request */
  lastAuthorization?: URLSearchParams;
  /** every code and token it issued */
  secrets: string[];
  stop(): Promise<void>;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function body(req: IncomingMessage): Promise<URLSearchParams> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return new URLSearchParams(text);
}

function json(res: ServerResponse, status: number, value: unknown) {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('cache-control', 'no-store');
  res.end(JSON.stringify(value));
}

export interface RogueOptions {
  /** serve https with this key and certificate */
  tls?: { key: string; cert: string };
  /** the loopback address to listen on (default 127.0.0.1) */
  host?: string;
}

export async function startRogue(options: RogueOptions = {}): Promise<Rogue> {
  const http = options.tls ? createHttpsServer(options.tls) : createServer();
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => http.listen(0, host, resolve));
  const issuer = `${options.tls ? 'https' : 'http'}://${host}:${(http.address() as AddressInfo).port}`;
  const key = await generateKeyPair('RS256', { extractable: true });
  const other = await generateKeyPair('RS256', { extractable: true });
  const publicJwk = { ...(await exportJWK(key.publicKey)), kid: 'rogue-1', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { challenge: string; nonce: string; redirectUri: string }>();
  const accessTokens = new Set<string>();

  const rogue: Rogue = {
    issuer,
    defect: 'none',
    subject: 'mallory',
    claims: {},
    secrets: [],
    async stop() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };

  async function idToken(nonce: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      ...rogue.claims,
      iss: rogue.defect === 'wrong-issuer' ? 'https://issuer.evil.example' : issuer,
      sub: rogue.subject,
      aud: rogue.defect === 'wrong-audience' ? 'someone-else' : ROGUE_CLIENT,
      iat: rogue.defect === 'expired' ? now - 7200 : now,
      exp: rogue.defect === 'expired' ? now - 3600 : now + 300,
      nonce: rogue.defect === 'wrong-nonce' ? 'not-the-nonce-you-sent' : nonce,
    };
    if (rogue.defect === 'unsigned') return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
    return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'rogue-1', typ: 'JWT' }).sign(rogue.defect === 'foreign-key' ? other.privateKey : key.privateKey);
  }

  http.on('request', async (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        userinfo_endpoint: `${issuer}/userinfo`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
        authorization_response_iss_parameter_supported: true,
      });
    }
    if (url.pathname === '/jwks') return json(res, 200, { keys: [publicJwk] });
    if (url.pathname === '/authorize') {
      const q = url.searchParams;
      rogue.lastAuthorization = q;
      if (q.get('client_id') !== ROGUE_CLIENT || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge') || !q.get('redirect_uri')) return json(res, 400, { error: 'invalid_request' });
      const code = randomBytes(24).toString('base64url');
      rogue.secrets.push(code);
      codes.set(code, { challenge: q.get('code_challenge')!, nonce: q.get('nonce') ?? '', redirectUri: q.get('redirect_uri')! });
      const back = new URL(q.get('redirect_uri')!);
      back.searchParams.set('code', code);
      if (q.get('state') !== null) back.searchParams.set('state', q.get('state')!);
      back.searchParams.set('iss', rogue.defect === 'mixed-up-response-iss' ? 'https://issuer.evil.example' : issuer);
      res.statusCode = 302;
      res.setHeader('location', back.href);
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      const form = await body(req);
      // client_secret_basic: form-encoded id and secret (RFC 6749 §2.3.1)
      const [id, secret] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':')
        .map((part) => decodeURIComponent(part.replace(/\+/g, ' ')));
      if (id !== ROGUE_CLIENT || secret !== ROGUE_SECRET) return json(res, 401, { error: 'invalid_client' });
      const code = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      if (!code || form.get('grant_type') !== 'authorization_code' || form.get('redirect_uri') !== code.redirectUri) return json(res, 400, { error: 'invalid_grant' });
      if (createHash('sha256').update(verifier).digest('base64url') !== code.challenge) return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE' });
      const accessToken = randomBytes(24).toString('base64url');
      accessTokens.add(accessToken);
      const token = rogue.defect === 'no-id-token' ? undefined : await idToken(code.nonce);
      rogue.secrets.push(accessToken, ...(token ? [token] : []));
      return json(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 300, ...(token ? { id_token: token } : {}) });
    }
    if (url.pathname === '/userinfo') {
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!bearer || !accessTokens.has(bearer)) return json(res, 401, { error: 'invalid_token' });
      return json(res, 200, { ...rogue.claims, sub: rogue.defect === 'userinfo-about-someone-else' ? 'someone-else' : rogue.subject });
    }
    json(res, 404, { error: 'not_found' });
  });
  return rogue;
}
