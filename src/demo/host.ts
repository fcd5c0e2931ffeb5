/**
 * The demo's MCP host page. It plays the part of an MCP host (a desktop app, the MCP
 * Inspector) so that a newcomer sees the whole path in a browser, with the MCP SDK's own
 * client doing what hosts do:
 *
 *   GET  /demo             → not connected: what will happen and a Connect button; connected:
 *                            the token's scopes, the MCP server's tools (tools/list) with a form
 *                            each, and the last result
 *   POST /demo/connect     → the SDK client connects without a token: the MCP server's 401 →
 *                            its RFC 9728 metadata → our RFC 8414 metadata → an authorization
 *                            request (PKCE S256, `resource`, the scopes the server lists) → 303 to /auth
 *   GET  /demo/callback    → `state` and `iss` checked; the SDK redeems the code → 303 /demo
 *   POST /demo/call        → tools/call through the SDK client with the token → 303 /demo
 *   POST /demo/disconnect  → forgets the token
 *
 * Its state is per browser (a random cookie), in this process's memory, for two hours at most.
 * Tokens never reach the page: it shows their scopes and expiry only. A refusal by the MCP
 * server (a revoked token, say) is shown with the server's own `error_description`.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Csrf } from '../http/csrf.js';
import { readForm } from '../http/form-body.js';
import { PageError } from '../http/page-error.js';
import type { DemoPage, DemoResult, DemoTool, Render } from '../http/render.js';
import type { Logger } from '../observability/logger.js';
import { DEMO_HOST_CLIENT_ID, DEMO_PATH } from './config.js';

type Sdk = Awaited<ReturnType<typeof loadSdk>>;
type Tokens = { access_token: string; token_type: string; expires_in?: number | undefined; scope?: string | undefined };

async function loadSdk() {
  const [{ Client }, { StreamableHTTPClientTransport }, { UnauthorizedError, auth }] = await Promise.all([
    import('@modelcontextprotocol/sdk/client/index.js'),
    import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/client/auth.js'),
  ]);
  return { Client, StreamableHTTPClientTransport, UnauthorizedError, auth };
}

interface Session {
  id: string;
  createdAt: number;
  state?: string;
  codeVerifier?: string;
  authorizationUrl?: string;
  tokens?: Tokens;
  tokensAt?: number;
  /** shown once by the next GET /demo */
  flash?: { notice?: string; error?: string; result?: DemoResult };
}

const SESSION_TTL_MS = 2 * 3600_000;
const MAX_SESSIONS = 1000;
const COOKIE = 'mcp-authz.demo';
const NOTICES: Record<string, string> = {
  'account-created': 'Your account is ready. Connect to the Notes MCP server below: you will sign in with it and choose what to allow.',
};

export interface HostDeps {
  issuer: string;
  basePath: string;
  /** the MCP server this host connects to */
  mcpUrl: string;
  csrf: Csrf;
  render: Render;
  log: Logger;
}

/** The MCP server's `error_description` from a 401/403 challenge, if it gave one. */
function challengeDescription(header: string | null): string | undefined {
  return header ? /error_description="((?:[^"\\]|\\.)*)"/.exec(header)?.[1]?.replace(/\\(.)/g, '$1') : undefined;
}

function expiresText(session: Session): string {
  const { tokens, tokensAt } = session;
  if (!tokens?.expires_in || !tokensAt) return 'unknown';
  const left = Math.round((tokensAt + tokens.expires_in * 1000 - Date.now()) / 60_000);
  return left > 0 ? `in ${left} minute${left === 1 ? '' : 's'}` : 'now (expired)';
}

/** Text a tools/call answered, its content items joined. */
function resultText(content: unknown): string {
  if (!Array.isArray(content)) return '';
  return content
    .map((item: { type?: unknown; text?: unknown }) => (item?.type === 'text' && typeof item.text === 'string' ? item.text : `[${String(item?.type)} content]`))
    .join('\n');
}

const callForm = z.object({ csrf: z.string().max(200), tool: z.string().min(1).max(100) });

export async function demoHostRouter(deps: HostDeps): Promise<Router> {
  const { issuer, basePath, mcpUrl, csrf, log } = deps;
  const base = `${basePath}${DEMO_PATH}`;
  const redirectUrl = `${issuer}${DEMO_PATH}/callback`;
  const secure = new URL(issuer).protocol === 'https:';
  const router = new Router();
  const render = (ctx: Context, page: DemoPage, status = 200) => deps.render(ctx, 'demo', page, status);

  let sdk: Sdk | undefined;
  try {
    sdk = await loadSdk();
  } catch (err) {
    log.warn({ err: { message: (err as Error).message } }, 'the demo host page needs @modelcontextprotocol/sdk (a dev dependency); it is off');
  }
  if (!sdk) {
    router.all([base, `${base}/(.*)`], (ctx) =>
      render(ctx, { title: 'MCP host (demo)', state: 'unavailable', reason: 'This page needs the MCP SDK, a development dependency of mcp-authz: run npm install in the repository, then npm start.' }, 503),
    );
    return router;
  }
  const { Client, StreamableHTTPClientTransport, UnauthorizedError, auth } = sdk;

  const sessions = new Map<string, Session>();

  /** This browser's session, made (and its cookie set) when it has none. */
  function session(ctx: Context): Session {
    const now = Date.now();
    for (const [id, s] of sessions) if (now - s.createdAt > SESSION_TTL_MS) sessions.delete(id);
    const id = ctx.cookies.get(COOKIE);
    const found = id ? sessions.get(id) : undefined;
    if (found) return found;
    if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
    const created: Session = { id: randomBytes(32).toString('base64url'), createdAt: now };
    sessions.set(created.id, created);
    ctx.cookies.set(COOKIE, created.id, { httpOnly: true, sameSite: 'lax', secure, path: base, overwrite: true });
    return created;
  }

  const purpose = (s: Session) => `demo:${s.id}`;

  async function form(ctx: Context, s: Session): Promise<Record<string, string | string[]>> {
    const raw = await readForm(ctx);
    if (!csrf.verify(ctx, purpose(s), raw.csrf)) {
      throw new PageError(403, 'Request blocked', 'This form has expired or did not come from this site. Go back, reload the page and try again.');
    }
    return raw;
  }

  /** The SDK's view of this browser's OAuth state: a pre-registered public client, PKCE, state. */
  function provider(s: Session) {
    return {
      get redirectUrl() {
        return redirectUrl;
      },
      get clientMetadata() {
        return { client_name: 'mcp-authz demo host', redirect_uris: [redirectUrl], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'] };
      },
      state: () => (s.state = randomBytes(16).toString('base64url')),
      clientInformation: () => ({ client_id: DEMO_HOST_CLIENT_ID }),
      tokens: () => s.tokens,
      saveTokens: (tokens: Tokens) => {
        s.tokens = tokens;
        s.tokensAt = Date.now();
      },
      redirectToAuthorization: (url: URL) => {
        s.authorizationUrl = url.href;
      },
      saveCodeVerifier: (verifier: string) => {
        s.codeVerifier = verifier;
      },
      codeVerifier: () => {
        if (!s.codeVerifier) throw new Error('no authorization request in progress');
        return s.codeVerifier;
      },
    };
  }

  /**
   * Runs `use` with an SDK client connected to the MCP server as this browser's host. A refusal
   * by the MCP server becomes a readable error; the token is forgotten when it was refused.
   */
  async function withClient<T>(s: Session, use: (client: InstanceType<typeof Client>) => Promise<T>): Promise<T> {
    let refusal: string | undefined;
    const fetchFn = async (input: string | URL, init?: RequestInit) => {
      const res = await fetch(input, init);
      if ((res.status === 401 || res.status === 403) && String(input).startsWith(mcpUrl)) refusal = challengeDescription(res.headers.get('www-authenticate')) ?? `HTTP ${res.status}`;
      return res;
    };
    const client = new Client({ name: 'mcp-authz-demo-host', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider(s), fetch: fetchFn });
    try {
      await client.connect(transport);
      return await use(client);
    } catch (err) {
      if (err instanceof UnauthorizedError || refusal) {
        delete s.tokens;
        throw new PageError(401, 'Refused', `The MCP server refused the token: ${refusal ?? 'not authorized'}. Connect again to sign in and choose what to allow.`);
      }
      log.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'demo host: the MCP request failed');
      throw new PageError(502, 'MCP server unavailable', `The MCP server at ${mcpUrl} did not answer as expected. Is it running? (npm start starts it alongside.)`);
    } finally {
      await client.close().catch(() => {});
    }
  }

  router.get(base, async (ctx) => {
    const s = session(ctx);
    const flash = s.flash ?? {};
    delete s.flash;
    const key = ctx.query.notice;
    const notice = flash.notice ?? (typeof key === 'string' && Object.hasOwn(NOTICES, key) ? NOTICES[key] : undefined);
    const common = { title: 'MCP host (demo)', mcpUrl, csrf: csrf.issue(ctx, purpose(s)), ...(notice ? { notice } : {}) };
    if (!s.tokens) {
      return render(ctx, { ...common, state: 'disconnected', issuer, connectAction: `${base}/connect`, ...(flash.error ? { error: flash.error } : {}) });
    }
    let tools: DemoTool[] = [];
    let error = flash.error;
    try {
      const listed = await withClient(s, (client) => client.listTools());
      tools = listed.tools.map((tool) => ({
        name: tool.name,
        title: tool.title ?? tool.name,
        description: tool.description ?? '',
        fields: Object.entries((tool.inputSchema.properties ?? {}) as Record<string, { type?: unknown; description?: unknown }>)
          .filter(([, schema]) => schema?.type === 'string')
          .map(([name]) => ({ name, label: name })),
      }));
    } catch (err) {
      if (!(err instanceof PageError)) throw err;
      error = err.message;
    }
    if (!s.tokens) {
      return render(ctx, { ...common, state: 'disconnected', issuer, connectAction: `${base}/connect`, ...(error ? { error } : {}) });
    }
    render(ctx, {
      ...common,
      state: 'connected',
      scopes: (s.tokens.scope ?? '').split(' ').filter(Boolean),
      expires: expiresText(s),
      tools,
      callAction: `${base}/call`,
      disconnectAction: `${base}/disconnect`,
      appsUrl: `${basePath}/account/apps`,
      ...(flash.result ? { result: flash.result } : {}),
      ...(error ? { error } : {}),
    });
  });

  router.post(`${base}/connect`, async (ctx) => {
    const s = session(ctx);
    await form(ctx, s);
    delete s.tokens;
    delete s.authorizationUrl;
    try {
      // as a host does: try without a token, and follow the 401 to the authorization server
      await withClient(s, async () => undefined);
    } catch (err) {
      if (!(err instanceof PageError) || !s.authorizationUrl) throw err;
    }
    if (!s.authorizationUrl) throw new PageError(502, 'No authorization request', 'The MCP server did not ask for authorization.');
    ctx.status = 303;
    ctx.redirect(s.authorizationUrl);
  });

  router.get(`${base}/callback`, async (ctx) => {
    const s = session(ctx);
    const { code, state, error, iss } = ctx.query;
    const expected = s.state;
    delete s.state;
    const sameState = typeof state === 'string' && expected !== undefined && state.length === expected.length && timingSafeEqual(Buffer.from(state), Buffer.from(expected));
    if (!sameState) throw new PageError(400, 'Unexpected answer', 'This authorization answer does not belong to a request of this page. Connect again.');
    if (iss !== undefined && iss !== issuer) throw new PageError(400, 'Unexpected answer', 'The answer came from another authorization server. Connect again.');
    if (typeof error === 'string') {
      s.flash = { error: error === 'access_denied' ? 'You did not allow access: the host has no token.' : `The authorization server answered: ${error}.` };
    } else if (typeof code === 'string' && code) {
      try {
        await auth(provider(s), { serverUrl: mcpUrl, authorizationCode: code, fetchFn: fetch });
        s.flash = { notice: 'Connected: the host has an access token for the Notes MCP server, with the scopes you allowed.' };
      } catch (err) {
        // the SDK's OAuth errors carry the server's error code in the message, never the code itself
        log.info({ err: { name: (err as Error).name, message: (err as Error).message } }, 'demo host: the code was not redeemed');
        s.flash = { error: 'The authorization server did not give a token for that answer (an old or used code?). Connect again.' };
      }
      delete s.codeVerifier;
    } else {
      throw new PageError(400, 'Unexpected answer', 'The authorization answer had no code. Connect again.');
    }
    ctx.status = 303;
    ctx.redirect(base);
  });

  router.post(`${base}/call`, async (ctx) => {
    const s = session(ctx);
    const raw = await form(ctx, s);
    const parsed = callForm.safeParse(raw);
    if (!parsed.success) throw new PageError(400, 'Invalid request', 'The form was incomplete or malformed. Go back and try again.');
    const args: Record<string, string> = {};
    for (const [key, value] of Object.entries(raw)) if (key.startsWith('arg.') && typeof value === 'string') args[key.slice(4)] = value;
    const tool = parsed.data.tool;
    try {
      const result = await withClient(s, (client) => client.callTool({ name: tool, arguments: args }));
      s.flash = { result: { tool, text: resultText(result.content), isError: result.isError === true } };
    } catch (err) {
      if (!(err instanceof PageError)) throw err;
      s.flash = { error: err.message };
    }
    ctx.status = 303;
    ctx.redirect(base);
  });

  router.post(`${base}/disconnect`, async (ctx) => {
    const s = session(ctx);
    await form(ctx, s);
    delete s.tokens;
    s.flash = { notice: 'Disconnected: the host forgot its token (the grant stays until you revoke it on your connected apps page).' };
    ctx.status = 303;
    ctx.redirect(base);
  });

  return router;
}
