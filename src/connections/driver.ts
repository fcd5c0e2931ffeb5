/**
 * What each kind of sign-in connection implements (./oidc, ./saml, ./ldap). The shared
 * parts — which connection a person picks, home-realm discovery, provisioning, roles, the
 * audit record and finishing the engine's login prompt — live in ./router.ts and
 * ./provision.ts, so a driver only speaks its protocol.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRecord } from '../../adapters/contract.js';
import type { ConnectionConfig } from '../config/sign-in.js';
import type { UpstreamIdentity } from './identity.js';

/** The sign-in the person is in the middle of: the engine's interaction. */
export interface PendingSignIn {
  /** the interaction uid (`/interaction/:uid`) */
  uid: string;
  clientId: string;
  /** the client's `login_hint`, or the address typed for home-realm discovery: passed on upstream */
  loginHint?: string;
  /** the client asked for a fresh sign-in (`prompt=login`, or `max_age` in seconds): asked of the upstream too */
  maxAge?: number;
}

/** Finishes a sign-in with what the upstream said (provision, audit, back to the engine). */
export type CompleteSignIn = (ctx: Context, connection: ConnectionConfig, uid: string, identity: UpstreamIdentity) => Promise<void>;

/** A refusal by the upstream or of its answer: shown as a readable page, details logged. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    /** for the log and the audit record; never shown to the person */
    readonly reason: string,
    /** what the person is told */
    readonly userMessage = 'The sign-in service did not confirm who you are. Go back to the app and try again.',
  ) {
    super(reason);
  }
}

export interface ConnectionDriver {
  readonly config: ConnectionConfig;
  /**
   * Redirect-based kinds (OIDC, SAML): send the browser to the upstream to sign in for
   * `pending`. The driver keeps what it needs to check the answer (state, nonce, request id)
   * and calls `complete` from its own route with the uid it kept.
   */
  start?(ctx: Context, pending: PendingSignIn): Promise<void>;
  /**
   * Password kinds (LDAP): the person for these credentials, undefined when they do not
   * match. Never throws for wrong input; throws {@link UpstreamError} when the directory
   * cannot be asked.
   */
  authenticate?(username: string, password: string): Promise<UpstreamIdentity | undefined>;
  /**
   * Called when a token of an account of this connection is refreshed (where configured):
   * false when the person is gone upstream, which refuses the refresh and revokes their grants.
   */
  stillActive?(account: AccountRecord): Promise<boolean>;
  /**
   * Redirect-based kinds: the URLs `start` may send the browser to (the upstream's sign-in
   * page). Home-realm discovery is a form POST on our login page that ends there, and Chromium
   * applies that page's CSP `form-action` to the redirects, so the page allows their origins.
   */
  upstreamUrls?(): string[];
  /** Adds the driver's own routes (callbacks, metadata) to the `/connections/:id` router. */
  routes?(router: Router, complete: CompleteSignIn): void;
  close?(): Promise<void>;
}
