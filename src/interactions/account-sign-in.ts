/**
 * A sign-in for the account pages (connected apps, sign-in security, approvals), for a browser
 * that has no session yet:
 *
 *   GET /account/sign-in?return=<path>  → an authorization request of the built-in account client
 *                                         (src/provider/account-client.ts): the ordinary sign-in
 *                                         pages, limits, second factor and audit (login.succeeded)
 *   GET /account/signed-in?code&state   → its redirect URI: checks the state, throws the code
 *                                         away, and sends the person (303) to the return path
 *
 * What the person comes back with is oidc-provider's browser session, which the account pages
 * read; the code is not needed. The state is bound to this browser twice: a signed, httpOnly
 * cookie that only this callback path receives, and a single-use record in the store (so a
 * second use of the same callback, here or on another replica, is refused). The code is
 * deleted at the callback rather than left to its short lifetime; it could not be redeemed
 * anyway (its grant is never stored, and the PKCE verifier is thrown away at once).
 *
 * The return path is checked by src/http/account-paths.ts `safeReturnPath`: a path of this
 * server under `/account/` or `/approvals/`, anything else gives the connected apps page.
 */
import Router from '@koa/router';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../../adapters/contract.js';
import { SingleUseRecords } from '../../adapters/single-use-records.js';
import type { Config } from '../config/schema.js';
import { ACCOUNT_SIGN_IN_PATH, ACCOUNT_SIGNED_IN_PATH, safeReturnPath } from '../http/account-paths.js';
import { PageError } from '../http/page-error.js';
import { sessionPerson } from '../http/session-person.js';
import type { Logger } from '../observability/logger.js';
import { ACCOUNT_CLIENT_ID, accountRedirectUri } from '../provider/account-client.js';
import type { ProviderHolder } from '../provider/holder.js';

export interface AccountSignInDeps {
  config: Config;
  store: Store;
  holder: ProviderHolder;
  log: Logger;
  basePath: string;
}

/** How long a started sign-in may take (the person types a password, maybe a second factor). */
export const ACCOUNT_SIGN_IN_TTL = 900;

const STATE = /^[A-Za-z0-9_-]{43}$/;

const notCompleted = () =>
  new PageError(
    400,
    'Sign-in not completed',
    'This sign-in has expired, was already used, or was started in another browser. Open the account page again and sign in from there.',
  );

export function accountSignInRouter(deps: AccountSignInDeps): Router {
  const { config, store, holder, log, basePath } = deps;
  const secure = new URL(config.issuer).protocol === 'https:';
  const callbackPath = `${basePath}${ACCOUNT_SIGNED_IN_PATH}`;
  const redirectUri = accountRedirectUri(config.issuer);
  const cookieName = secure ? '__Secure-mcp-authz.account-sign-in' : 'mcp-authz.account-sign-in';
  const cookieOptions = { signed: true, httpOnly: true, sameSite: 'lax' as const, secure, path: callbackPath, overwrite: true };
  const pending = new SingleUseRecords<{ returnPath: string }>(store, 'AccountSignIn', ACCOUNT_SIGN_IN_TTL);
  const router = new Router();

  router.get(`${basePath}${ACCOUNT_SIGN_IN_PATH}`, async (ctx) => {
    const returnPath = safeReturnPath(basePath, ctx.query.return);
    const state = SingleUseRecords.newKey();
    await pending.put(state, { returnPath });
    ctx.cookies.set(cookieName, state, { ...cookieOptions, maxAge: ACCOUNT_SIGN_IN_TTL * 1000 });
    // PKCE is required of every client; nobody ever redeems this code, so the verifier is not kept
    const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
    const params = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid',
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${basePath}/auth?${params}`);
  });

  router.get(callbackPath, async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const expected = ctx.cookies.get(cookieName, { signed: true });
    ctx.cookies.set(cookieName, null, cookieOptions);
    const { state, code, error } = ctx.query;
    if (typeof state !== 'string' || !STATE.test(state) || !expected || !sameState(state, expected)) {
      log.info({ requestId: ctx.state.requestId, event: 'account_sign_in.refused', reason: expected ? 'state_mismatch' : 'no_state_cookie' }, 'account sign-in callback refused');
      throw notCompleted();
    }
    const started = await pending.take(state);
    if (!started) {
      log.info({ requestId: ctx.state.requestId, event: 'account_sign_in.refused', reason: 'state_used_or_expired' }, 'account sign-in callback refused');
      throw notCompleted();
    }
    // the code is never redeemed: gone now rather than at the end of its lifetime
    const issued = typeof code === 'string' && code.length <= 256 ? await holder.provider.AuthorizationCode.find(code).catch(() => undefined) : undefined;
    if (issued && issued.clientId === ACCOUNT_CLIENT_ID) await issued.destroy();
    if (typeof error === 'string') {
      // e.g. "Cancel" on the sign-in page (access_denied); the engine has logged and audited the rest
      throw new PageError(401, 'Not signed in', 'The sign-in was cancelled or did not succeed. Open the account page again to sign in.');
    }
    const accountId = (await sessionPerson(ctx, store))?.account.id;
    if (!accountId || !issued || issued.accountId !== accountId) {
      log.info({ requestId: ctx.state.requestId, event: 'account_sign_in.refused', reason: 'no_session' }, 'account sign-in callback refused');
      throw notCompleted();
    }
    ctx.status = 303;
    ctx.redirect(started.returnPath);
  });

  return router;
}

function sameState(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
