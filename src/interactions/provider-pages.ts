/**
 * The pages oidc-provider asks us to render: device code entry and confirmation, device
 * success, sign-out, errors and the `form_post` response. All go through the same views,
 * CSP and escaping as our own pages.
 */
import { describeWait } from '../http/limits.js';
import { WRONG_USER_CODE } from '../http/user-code-attempts.js';
import type { KoaContextWithOIDC, ErrorOut } from 'oidc-provider';
import type { ProviderPages } from '../provider/configuration.js';
import type { ResourceRegistry } from '../provider/resources.js';
import type { Render } from '../http/render.js';
import { allowFormAction } from '../http/security-headers.js';
import { clientView, requestedResources } from './describe.js';

/** Set by the device-link middleware: the code from `verification_uri_complete`, to prefill. */
export const PREFILL_USER_CODE = 'prefillUserCode';

/** Why the user-code page is shown again, by oidc-provider's re-render error name. */
const USER_CODE_MESSAGES: Record<string, string> = {
  NoCodeError: 'Enter the code shown on your device.',
  NotFoundError: 'That code is not valid, has expired or was already used. Check the code on your device and try again.',
  ExpiredError: 'That code is not valid, has expired or was already used. Check the code on your device and try again.',
  AlreadyUsedError: 'That code is not valid, has expired or was already used. Check the code on your device and try again.',
  AbortedError: 'Cancelled: the device was not connected. You can close this page.',
  default: 'Something went wrong with that code. Check the code on your device and try again.',
};

/** Errors that mean a wrong code was typed (they count against the source: `rateLimits.userCodesPerSource`, src/http/user-code-attempts.ts). */
const WRONG_CODE = new Set(['NotFoundError', 'ExpiredError', 'AlreadyUsedError']);

const GENERIC = 'Something went wrong while handling your request. Go back to the app and try again.';

export function providerPages(resources: ResourceRegistry, render: Render, staticClientIds: ReadonlySet<string>): ProviderPages {
  const requestId = (ctx: KoaContextWithOIDC) => (ctx.state as { requestId?: string }).requestId;
  const codeVerificationUrl = (ctx: KoaContextWithOIDC) => ctx.oidc.urlFor('code_verification');

  return {
    async userCodeInput(ctx, xsrf, error) {
      const prefill = (ctx.state as Record<string, unknown>)[PREFILL_USER_CODE];
      const message = error ? USER_CODE_MESSAGES[error.name] ?? USER_CODE_MESSAGES.default : undefined;
      const status = !error || error.name === 'AbortedError' ? 200 : 400;
      // counted against the source by src/http/user-code-attempts.ts
      if (error && WRONG_CODE.has(error.name)) (ctx.state as Record<string, unknown>)[WRONG_USER_CODE] = true;
      render(
        ctx,
        'device-code',
        {
          title: 'Connect a device',
          action: codeVerificationUrl(ctx),
          xsrf,
          ...(typeof prefill === 'string' ? { userCode: prefill } : {}),
          ...(message ? { error: message } : {}),
        },
        status,
      );
    },

    async userCodeConfirm(ctx, xsrf, client, userCode) {
      const params = (ctx.oidc.entities.DeviceCode as { params?: Record<string, unknown> } | undefined)?.params ?? {};
      const requested = requestedResources(resources, client.clientId, params.resource, params.scope);
      render(ctx, 'device-confirm', {
        title: 'Confirm the device',
        action: codeVerificationUrl(ctx),
        xsrf,
        userCode,
        client: clientView(client, staticClientIds),
        resources: requested.map(({ resource, scopes }) => ({
          name: resource.name,
          uri: resource.uri,
          scopes: scopes.map((name) => ({ name, description: resource.scopes[name]!.description, dangerous: resource.scopes[name]!.dangerous })),
        })),
      });
    },

    async deviceSuccess(ctx) {
      const name = ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;
      render(ctx, 'device-done', { title: 'Device connected', aborted: false, ...(name ? { clientName: name } : {}) });
    },

    async logout(ctx, xsrf) {
      const name = ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;
      render(ctx, 'logout', { title: 'Sign out', action: ctx.oidc.urlFor('end_session_confirm'), xsrf, ...(name ? { clientName: name } : {}) });
    },

    async loggedOut(ctx) {
      const name = ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;
      render(ctx, 'logged-out', { title: 'Signed out', ...(name ? { clientName: name } : {}) });
    },

    async error(ctx, out: ErrorOut) {
      const status = ctx.status >= 400 ? ctx.status : 400;
      const serverSide = status >= 500 || out.error === 'server_error';
      const id = requestId(ctx);
      if (out.error === 'access_denied' && ctx.oidc?.route === 'device_resume') {
        render(ctx, 'device-done', { title: 'Device not connected', aborted: true }, 200);
        return;
      }
      if (status === 429) {
        // a rate limit (src/http/limits.ts): say so, and how long waiting takes
        const seconds = Number(ctx.response.get('Retry-After'));
        const wait = Number.isFinite(seconds) && seconds > 0 ? describeWait(seconds * 1000) : 'a few minutes';
        render(
          ctx,
          'error',
          { title: 'Too many requests', message: `Too many requests like this one were made. Wait ${wait}, then go back to the app and try again.`, ...(id ? { requestId: id } : {}) },
          429,
        );
        return;
      }
      render(
        ctx,
        'error',
        {
          title: serverSide ? 'Something went wrong' : 'This request cannot be completed',
          message: serverSide ? GENERIC : describeOAuthError(out),
          ...(id ? { requestId: id } : {}),
        },
        status,
      );
    },

    async formPost(ctx, action, fields) {
      allowFormAction(ctx, action);
      render(ctx, 'form-post', { title: 'Returning to the app', action, fields: Object.entries(fields).map(([name, value]) => ({ name, value })) });
    },
  };

  function describeOAuthError(out: ErrorOut): string {
    // oidc-provider's descriptions are fixed texts meant for the wire (no request values).
    const description = typeof out.error_description === 'string' ? out.error_description : '';
    const base = `The app sent a request this server cannot accept (${out.error}).`;
    return description ? `${base} ${description.charAt(0).toUpperCase()}${description.slice(1)}.` : base;
  }
}
