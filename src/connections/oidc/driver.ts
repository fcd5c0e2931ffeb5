/**
 * Sign-in through an upstream OpenID Provider (authorization code flow, PKCE S256, state and
 * nonce), with openid-client:
 *
 *   start:  GET /interaction/:uid/connection/:id → 303 to the upstream's authorization endpoint,
 *           keeping {PKCE verifier, nonce} in the store under the random `state` (single-use);
 *           the client's `login_hint` goes along, and a fresh sign-in it asked for (`prompt=login`,
 *           `max_age`) is asked of the upstream, whose `auth_time` must then show it
 *   answer: GET /connections/:id/callback → the pending request taken by `state`, the code
 *           redeemed, the ID token checked (signature, issuer, audience, nonce, expiry; the
 *           `iss` response parameter where the upstream sends it), userinfo read when the ID
 *           token lacks a configured claim, then the person handed to `complete`.
 *
 * With `checkOnRefresh` (default), a refresh token is asked of the upstream too
 * (`offline_access` when its discovery lists the scope, with `prompt=consent` as OIDC Core
 * §11 wants unless `promptConsent` is false) and kept sealed per account
 * (./refresh-tokens.ts); at each refresh of ours `stillActive` uses it there: `invalid_grant` (the person removed or disabled, their grant
 * revoked) means gone — our refresh is refused and their grants revoked (src/connections/gate.ts);
 * the upstream unreachable or failing throws, so our refresh answers 503 and nothing is
 * revoked. An upstream that issued no refresh token cannot be asked: the refresh is allowed,
 * with a warning once. The upstream's other tokens are used here and forgotten; none is ever
 * logged, audited or passed on.
 *
 * Whatever goes wrong, the person sees a short page; the log says what (never a code or
 * token), and the audit log records `login.failed` with a short reason.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import * as client from 'openid-client';
import type { AccountRecord } from '../../../adapters/contract.js';
import type { OidcConnectionConfig } from '../../config/sign-in.js';
import { requestFacts } from '../../audit/request-facts.js';
import { PageError } from '../../http/page-error.js';
import { UpstreamError, type CompleteSignIn, type ConnectionDriver, type PendingSignIn } from '../driver.js';
import type { DriverContext } from '../registry.js';
import { accountIdFor } from '../provision.js';
import { identityFrom, missingFromIdToken, type Claims } from './claims.js';
import { UpstreamRefreshTokens } from './refresh-tokens.js';
import { describe, UpstreamClient } from './upstream-client.js';

export const CALLBACK_PATH = '/callback';

export function oidcDriver(connection: OidcConnectionConfig, context: DriverContext): ConnectionDriver {
  const upstream = new UpstreamClient(connection, context.log);
  const redirectUri = `${context.config.issuer.replace(/\/$/, '')}/connections/${connection.id}${CALLBACK_PATH}`;
  const scope = [...new Set(['openid', ...connection.scopes])].join(' ');
  const { log } = context;
  const refreshTokens = new UpstreamRefreshTokens(context.store, connection.id, context.config.ttl.grant, context.cookieKeys);
  /** a refresh check of the account already asking the upstream: shared, so a rotated upstream token is never used twice */
  const checking = new Map<string, Promise<boolean>>();
  let warnedNoRefreshToken = false;

  /** `offline_access` is asked when refreshes are checked and the upstream lists it. */
  const asksOffline = (config: client.Configuration) => connection.checkOnRefresh && (config.serverMetadata().scopes_supported ?? []).includes('offline_access');

  const expired = () =>
    new PageError(400, 'Sign-in expired', 'This sign-in request has expired, was already used or was opened in another browser. Go back to the app and start again.');

  /**
   * A refused answer: the log says exactly why (`detail`: openid-client's check, never a
   * token), the audit record a short reason; the person gets a short page.
   */
  function refused(
    ctx: Context,
    failure: { reason: string; detail?: string; upstreamError?: string; clientId?: string },
    status = 502,
    message = `${connection.name} did not confirm who you are. Go back to the app and try again.`,
  ): PageError {
    const { reason, detail, upstreamError, clientId } = failure;
    log.warn(
      { requestId: ctx.state.requestId, event: 'login.failed', connection: connection.id, method: 'oidc', reason: detail ? `${reason}: ${detail}` : reason, ...(upstreamError ? { upstreamError } : {}) },
      'sign-in through an OpenID provider failed',
    );
    context.audit.record({
      event: 'login.failed',
      outcome: 'failure',
      ...(clientId ? { client: clientId } : {}),
      ...requestFacts(ctx),
      details: { reason, connection: connection.id, method: 'oidc', ...(upstreamError ? { upstreamError } : {}) },
    });
    return new PageError(status, `Sign-in with ${connection.name} failed`, message);
  }

  async function start(ctx: Context, pending: PendingSignIn): Promise<void> {
    const config = await upstream.configuration();
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const state = client.randomState();
    const values: Record<string, string> = { verifier, nonce, clientId: pending.clientId };
    if (pending.maxAge !== undefined) values.maxAge = String(pending.maxAge);
    await context.pending.begin({ uid: pending.uid, connection: connection.id, values }, state);
    const offline = asksOffline(config);
    const prompt = [...(pending.maxAge === 0 ? ['login'] : []), ...(offline && connection.promptConsent ? ['consent'] : [])].join(' ');
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: offline ? `${scope} offline_access` : scope,
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...(pending.loginHint ? { login_hint: pending.loginHint } : {}),
      // a fresh sign-in asked of us is asked of the upstream, and its auth_time checked
      ...(pending.maxAge === undefined ? {} : { max_age: String(pending.maxAge) }),
      ...(prompt ? { prompt } : {}),
    });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(url.href);
  }

  async function callback(ctx: Context, complete: CompleteSignIn): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    const pending = state ? await context.pending.take(state) : undefined;
    if (!pending || pending.connection !== connection.id || !pending.values.verifier || !pending.values.nonce) {
      refused(ctx, { reason: state ? 'unknown_state' : 'no_state' });
      throw expired();
    }
    const clientId = pending.values.clientId;
    const error = ctx.query.error;
    if (error !== undefined) {
      const upstreamError = typeof error === 'string' && /^[\w.-]{1,64}$/.test(error) ? error : 'invalid';
      throw upstreamError === 'access_denied'
        ? refused(ctx, { reason: 'upstream_refused', upstreamError, clientId }, 403, `You did not sign in with ${connection.name}. Go back to the app to try again.`)
        : refused(ctx, { reason: 'upstream_refused', upstreamError, clientId });
    }

    let config: client.Configuration;
    try {
      config = await upstream.configuration();
    } catch (err) {
      throw refused(ctx, { reason: 'discovery_failed', clientId }, 502, `${connection.name} could not be reached. Try again in a moment.`);
    }
    const current = new URL(redirectUri);
    current.search = ctx.querystring;
    let idToken: Claims;
    let userinfo: Claims | undefined;
    let refreshToken: string | undefined;
    try {
      const tokens = await client.authorizationCodeGrant(config, current, {
        expectedState: state,
        expectedNonce: pending.values.nonce,
        pkceCodeVerifier: pending.values.verifier,
        idTokenExpected: true,
        ...(pending.values.maxAge === undefined ? {} : { maxAge: Number(pending.values.maxAge) }),
      });
      const claims = tokens.claims();
      if (!claims) throw new UpstreamError('no_id_token');
      idToken = claims as Claims;
      refreshToken = connection.checkOnRefresh && typeof tokens.refresh_token === 'string' && tokens.refresh_token !== '' ? tokens.refresh_token : undefined;
      if (missingFromIdToken(connection, idToken) && config.serverMetadata().userinfo_endpoint) {
        userinfo = (await client.fetchUserInfo(config, tokens.access_token, claims.sub)) as Claims;
      }
    } catch (err) {
      throw refused(ctx, err instanceof UpstreamError ? { reason: err.reason, clientId } : { reason: 'invalid_answer', detail: describe(err), clientId });
    }
    const identity = identityFrom(connection, idToken, userinfo);
    if (refreshToken) {
      // a store that cannot be reached fails the sign-in right after, at provisioning, as such (503)
      await refreshTokens.remember(accountIdFor(connection.id, identity.subject), refreshToken).catch((err: Error) => {
        log.warn({ event: 'oidc.refresh_token_not_kept', connection: connection.id, err: { name: err?.name, message: err?.message } }, 'could not keep the upstream refresh token of an account');
      });
    }
    await complete(ctx, connection, pending.uid, identity);
  }

  /** At a refresh of ours: the upstream refresh token used there. False only on its `invalid_grant`. */
  async function askUpstream(account: AccountRecord): Promise<boolean> {
    const token = await refreshTokens.recall(account.id);
    if (token === undefined) {
      if (!warnedNoRefreshToken) {
        warnedNoRefreshToken = true;
        log.warn(
          { event: 'oidc.refresh_unchecked', connection: connection.id },
          `no upstream refresh token is kept for an account: its refreshes are allowed without asking the provider (connections[${connection.id}].checkOnRefresh needs a provider that issues refresh tokens for offline_access)`,
        );
      }
      return true;
    }
    const config = await upstream.configuration();
    let tokens: client.TokenEndpointResponse;
    try {
      tokens = await client.refreshTokenGrant(config, token);
    } catch (err) {
      if (err instanceof client.ResponseBodyError && err.error === 'invalid_grant') {
        log.info({ event: 'oidc.refresh_refused', connection: connection.id, accountId: account.id }, 'the OpenID provider refused the refresh token of an account');
        await refreshTokens.forget(account.id);
        return false;
      }
      log.warn({ event: 'oidc.refresh_failed', connection: connection.id, accountId: account.id, reason: describe(err) }, 'could not ask the OpenID provider whether a person is still there');
      throw new UpstreamError('upstream_refresh_failed', `${connection.name} could not be reached. Try again in a moment.`);
    }
    if (typeof tokens.refresh_token === 'string' && tokens.refresh_token !== '' && tokens.refresh_token !== token) await refreshTokens.remember(account.id, tokens.refresh_token);
    return true;
  }

  function stillActive(account: AccountRecord): Promise<boolean> {
    let check = checking.get(account.id);
    if (!check) {
      check = askUpstream(account).finally(() => checking.delete(account.id));
      checking.set(account.id, check);
    }
    return check;
  }

  return {
    config: connection,
    start,
    ...(connection.checkOnRefresh ? { stillActive } : {}),
    upstreamUrls: () => upstream.urls(),
    routes(router: Router, complete: CompleteSignIn) {
      router.get(CALLBACK_PATH, (ctx) => callback(ctx, complete));
    },
  };
}
