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
 * The upstream's tokens are used here and forgotten: never stored, logged or passed on. So
 * the upstream is not asked again at a refresh (no `stillActive`): to cut people off, disable
 * the connection, or revoke their grants.
 *
 * Whatever goes wrong, the person sees a short page; the log says what (never a code or
 * token), and the audit log records `login.failed` with a short reason.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import * as client from 'openid-client';
import type { OidcConnectionConfig } from '../../config/sign-in.js';
import { requestFacts } from '../../audit/request-facts.js';
import { PageError } from '../../http/page-error.js';
import { UpstreamError, type CompleteSignIn, type ConnectionDriver, type PendingSignIn } from '../driver.js';
import type { DriverContext } from '../registry.js';
import { identityFrom, missingFromIdToken, type Claims } from './claims.js';
import { describe, UpstreamClient } from './upstream-client.js';

export const CALLBACK_PATH = '/callback';

export function oidcDriver(connection: OidcConnectionConfig, context: DriverContext): ConnectionDriver {
  const upstream = new UpstreamClient(connection, context.log);
  const redirectUri = `${context.config.issuer.replace(/\/$/, '')}/connections/${connection.id}${CALLBACK_PATH}`;
  const scope = [...new Set(['openid', ...connection.scopes])].join(' ');
  const { log } = context;

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
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      response_type: 'code',
      scope,
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...(pending.loginHint ? { login_hint: pending.loginHint } : {}),
      // a fresh sign-in asked of us is asked of the upstream, and its auth_time checked
      ...(pending.maxAge === undefined ? {} : pending.maxAge === 0 ? { prompt: 'login', max_age: '0' } : { max_age: String(pending.maxAge) }),
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
      if (missingFromIdToken(connection, idToken) && config.serverMetadata().userinfo_endpoint) {
        userinfo = (await client.fetchUserInfo(config, tokens.access_token, claims.sub)) as Claims;
      }
    } catch (err) {
      throw refused(ctx, err instanceof UpstreamError ? { reason: err.reason, clientId } : { reason: 'invalid_answer', detail: describe(err), clientId });
    }
    await complete(ctx, connection, pending.uid, identityFrom(connection, idToken, userinfo));
  }

  return {
    config: connection,
    start,
    upstreamUrls: () => upstream.urls(),
    routes(router: Router, complete: CompleteSignIn) {
      router.get(CALLBACK_PATH, (ctx) => callback(ctx, complete));
    },
  };
}
