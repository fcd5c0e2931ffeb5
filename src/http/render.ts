/**
 * Server-side rendering of the user-facing pages (login, consent, device flow, logout,
 * errors, form_post) with eta.
 *
 * Every interpolation is auto-escaped; templates never use the raw tag except the one
 * place the layout inserts the already-rendered (and already-escaped) page body. The
 * page data shapes are exported so callers are type-checked against the templates.
 * Rendered pages may contain CSRF tokens or personal data, hence `no-store`.
 */
import { Eta } from 'eta';
import type Koa from 'koa';

/** How a client is presented to the user; names are client-supplied and untrusted. */
export interface ClientView {
  id: string;
  name: string;
  /** True when the name came from the client itself (e.g. dynamic registration). */
  nameIsSelfAsserted: boolean;
  /** Who vouches for the client, e.g. "registered by your administrator" or a hostname. */
  host: string;
  /** Host the browser will be sent back to after the decision. */
  redirectHost?: string;
  /** The answer goes to an app on this computer (a loopback redirect) of a client nobody vouches for: any local program could claim to be it. */
  localOnly?: boolean;
  /** Deliberately unsupported: a client-chosen logo is an impersonation aid. */
  logoUri?: never;
}

/** An MCP server (protected resource) the request is about. */
export interface ResourceSummary {
  name: string;
  uri: string;
}

interface PageBase {
  title: string;
}

export interface LoginPage extends PageBase {
  /** POST target of the sign-in form. */
  action: string;
  csrf: string;
  /** Refilled after a failed attempt. */
  username?: string;
  error?: string;
  client: ClientView;
  resource?: ResourceSummary;
  /** When set, a "Cancel" form is offered that POSTs here. */
  abortAction?: string;
  /** Offer the local username and password form. */
  local: boolean;
  /** Home-realm discovery: an e-mail form POSTing here. */
  discoverAction?: string;
  /** Upstream connections: a link (`href`, OIDC and SAML) or a username/password form (`action`, LDAP). */
  connections: { id: string; name: string; href?: string; action?: string }[];
  /** The connection whose form is shown first and filled with `username`. */
  selected?: string;
}

export interface ConsentScope {
  /** The checkbox value (the scope string). */
  value: string;
  name: string;
  description: string;
  dangerous: boolean;
  checked: boolean;
  disabled?: boolean;
  note?: string;
}

export interface ConsentResource extends ResourceSummary {
  scopes: ConsentScope[];
}

export interface ConsentPage extends PageBase {
  action: string;
  abortAction: string;
  csrf: string;
  account: { username: string };
  client: ClientView;
  resources: ConsentResource[];
  /** Already human-readable, e.g. "1 hour". */
  lifetimes: { accessToken: string; refreshToken?: string };
}

export interface DeviceCodePage extends PageBase {
  action: string;
  xsrf: string;
  userCode?: string;
  error?: string;
}

export interface DeviceScope {
  name: string;
  description: string;
  dangerous: boolean;
}

export interface DeviceConfirmPage extends PageBase {
  action: string;
  xsrf: string;
  userCode: string;
  client: ClientView;
  resources: Array<ResourceSummary & { scopes: DeviceScope[] }>;
}

export interface DeviceDonePage extends PageBase {
  clientName?: string;
  aborted: boolean;
}

export interface LogoutPage extends PageBase {
  action: string;
  xsrf: string;
  clientName?: string;
}

export interface LoggedOutPage extends PageBase {
  clientName?: string;
}

export interface ErrorPage extends PageBase {
  /** Generic, user-safe text only; never an internal error message. */
  message: string;
  requestId?: string;
}

export interface FormPostPage extends PageBase {
  action: string;
  fields: Array<{ name: string; value: string }>;
}

/** A time on a page: machine-readable for `<time datetime>`, and as people read it (UTC, to the minute). */
export interface Moment {
  iso: string;
  text: string;
}

export function moment(ms: number): Moment {
  const iso = new Date(ms).toISOString();
  return { iso, text: `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` };
}

export interface AppView {
  grantId: string;
  client: ClientView;
  resources: Array<{ name: string; uri: string; scopes: Array<{ name: string; description?: string; dangerous: boolean }> }>;
  /** OpenID scopes of the grant (sign-in identity), if any */
  identity?: string;
  grantedAt: Moment;
  lastUsed?: Moment;
}

export type ConnectedAppsPage =
  /** `signInHref`: the account sign-in, returning to this page (src/http/account-paths.ts) */
  | { title: string; state: 'not-signed-in'; signInHref: string }
  | { title: string; state: 'signed-out'; revokedCount: number }
  | {
      title: string;
      state: 'list';
      account: { username: string };
      apps: AppView[];
      /** tool calls of the person's apps waiting for their decision (newest first) */
      pendingApprovals: PendingApprovalView[];
      notice?: string;
      csrf: string;
      revokeAction: string;
      revokeAllAction: string;
      /** the sign-in security page (second factors) */
      securityHref: string;
    };

/**
 * The second-factor step of a sign-in (src/second-factors/sign-in-step.ts): enter a code or use
 * a passkey, or enrol an authenticator app when policy requires one, then the recovery codes once.
 */
export type SecondFactorPage = {
  title: string;
  /** why it is asked: signing in, or a consent to a sensitive permission */
  reason: 'sign-in' | 'step-up';
  client: ClientView;
  account: { username: string };
  csrf: string;
  abortAction: string;
  error?: string;
  /** step-up: go on without the dangerous scopes (POST, CSRF) */
  skipAction?: string;
} & (
  | { state: 'verify'; action: string; totp: boolean; passkey?: { optionsAction: string; action: string } }
  | { state: 'enrol'; action: string; secret: string; uri: string }
  | { state: 'recovery-codes'; codes: string[]; continueAction: string }
);

/** A passkey as the account page lists it. */
export interface PasskeyView {
  id: string;
  name: string;
  createdAt: Moment;
}

/** The account's second factors (src/second-factors/account-security.ts). */
export type AccountSecurityPage =
  /** `signInHref`: the account sign-in, returning to this page (src/http/account-paths.ts) */
  | { title: string; state: 'not-signed-in'; signInHref: string }
  | {
      title: string;
      state: 'overview';
      account: { username: string };
      csrf: string;
      notice?: string;
      error?: string;
      /** this session had a second factor (or just verified one): factors may be changed */
      fresh: boolean;
      totp?: { enrolledAt: Moment };
      passkeys: PasskeyView[];
      recoveryCodesLeft: number;
      /** passkeys are offered (config.secondFactor.passkeys) */
      passkeysOffered: boolean;
      actions: {
        totpSetup: string;
        totpRemove: string;
        recoveryCodes: string;
        passkeyOptions: string;
        passkeyAdd: string;
        passkeyRemove: string;
        verify: string;
        verifyPasskeyOptions: string;
        verifyPasskey: string;
      };
      /** the connected-apps page */
      appsHref: string;
    }
  | { title: string; state: 'totp-setup'; account: { username: string }; csrf: string; action: string; secret: string; uri: string; backHref: string; error?: string }
  | { title: string; state: 'recovery-codes'; account: { username: string }; codes: string[]; backHref: string };

/** The first account, from the demo's one-time set-up link (src/demo/setup.ts). */
export type SetupPage =
  | { title: string; state: 'form'; action: string; csrf: string; token: string; username?: string; error?: string }
  | { title: string; state: 'invalid'; accountsExist: boolean };

/** A tool of the MCP server as the demo host offers it: a form with a text field per string argument. */
export interface DemoTool {
  name: string;
  title: string;
  description: string;
  fields: Array<{ name: string; label: string }>;
}

/** What the last tools/call answered. */
export interface DemoResult {
  tool: string;
  text: string;
  isError: boolean;
}

/** The demo's MCP host page (src/demo/host.ts). */
export type DemoPage =
  | { title: string; state: 'unavailable'; reason: string }
  | { title: string; state: 'disconnected'; mcpUrl: string; issuer: string; csrf: string; connectAction: string; notice?: string; error?: string }
  | {
      title: string;
      state: 'connected';
      mcpUrl: string;
      csrf: string;
      scopes: string[];
      expires: string;
      tools: DemoTool[];
      callAction: string;
      disconnectAction: string;
      appsUrl: string;
      notice?: string;
      result?: DemoResult;
      error?: string;
    };

/** One MCP tool call waiting for a person's decision (src/tool-approvals/approval-page.ts). */
export interface ToolCallView {
  client: ClientView;
  resource: ResourceSummary;
  tool: string;
  /** what the call will do, as the MCP server describes it (untrusted text, escaped) */
  summary: string;
  requested: Moment;
  expires: Moment;
}

/** A pending approval as the connected-apps page lists it. */
export interface PendingApprovalView extends ToolCallView {
  href: string;
}

/** The page on which a person approves or refuses one tool call. */
export type ToolApprovalPage =
  | { title: string; state: 'not-signed-in'; signInHref?: string }
  | {
      title: string;
      state: 'decide';
      account: { username: string };
      call: ToolCallView;
      csrf: string;
      action: string;
      /** a code (authenticator app or recovery code) is asked with the approval */
      askCode: boolean;
      /** or the person's passkey: the WebAuthn options are POSTed for here */
      passkey?: { optionsAction: string };
      /** policy asks for a second factor and the person has none: approving is not possible */
      needsEnrolment?: { securityHref: string };
      error?: string;
      appsHref: string;
    }
  | { title: string; state: 'approved' | 'refused' | 'expired' | 'decided'; account: { username: string }; call: ToolCallView; appsHref: string };

/** View name → data shape; `render` only accepts matching pairs. */
export interface PageData {
  login: LoginPage;
  consent: ConsentPage;
  'device-code': DeviceCodePage;
  'device-confirm': DeviceConfirmPage;
  'device-done': DeviceDonePage;
  logout: LogoutPage;
  'logged-out': LoggedOutPage;
  error: ErrorPage;
  'form-post': FormPostPage;
  'connected-apps': ConnectedAppsPage;
  setup: SetupPage;
  demo: DemoPage;
  'second-factor': SecondFactorPage;
  'account-security': AccountSecurityPage;
  'tool-approval': ToolApprovalPage;
}

export type ViewName = keyof PageData;

export const VIEW_NAMES: readonly ViewName[] = [
  'login',
  'consent',
  'device-code',
  'device-confirm',
  'device-done',
  'logout',
  'logged-out',
  'error',
  'form-post',
  'connected-apps',
  'setup',
  'demo',
  'second-factor',
  'account-security',
  'tool-approval',
];

export interface RendererOptions {
  /** Absolute path of the `views/` directory (it ships at the package root). */
  viewsDir: string;
  /** Cache compiled templates (on in production, off while editing templates). */
  cache: boolean;
  /** A line shown at the top of every page (the demo says it is one). */
  banner?: string | undefined;
}

export type Render = <V extends ViewName>(ctx: Koa.Context, view: V, data: PageData[V], status?: number) => void;

/** The render function, plus `renderToString` for callers that need the HTML only. */
export type Renderer = Render & {
  renderToString<V extends ViewName>(view: V, data: PageData[V]): string;
};

export function createRenderer(options: RendererOptions): Renderer {
  const eta = new Eta({
    views: options.viewsDir,
    cache: options.cache,
    autoEscape: true,
    autoTrim: [false, 'nl'],
    // Templates reference data as `it.*`; `with` would let a data key shadow helpers.
    useWith: false,
  });

  const renderToString = <V extends ViewName>(view: V, data: PageData[V]): string => {
    if (!VIEW_NAMES.includes(view)) throw new Error(`unknown view: ${String(view)}`);
    return eta.render(view, options.banner ? { ...data, banner: options.banner } : data);
  };

  const render: Render = (ctx, view, data, status = 200) => {
    const html = renderToString(view, data);
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = html;
  };

  return Object.assign(render, { renderToString });
}
