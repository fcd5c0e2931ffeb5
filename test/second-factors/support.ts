/**
 * What the second-factor tests share: an authorization as a browser starts it, a TOTP
 * enrolled straight into the account record (for tests about sign-in, not enrolment), the
 * current code made from a secret like an authenticator app does, and the audit records.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'otplib';
import { writeSecondFactors } from '../../src/accounts/second-factors.js';
import { newRecoveryCodes } from '../../src/second-factors/recovery-codes.js';
import { newTotpSecret } from '../../src/second-factors/totp.js';
import { Browser, findForm, type Page } from '../helpers/browser-driver.js';
import { NOTES, PASSWORD, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest, type AuthorizationRequest } from '../helpers/flows.js';
import { client, jwt } from '../helpers/rp.js';
import type { TestServer } from '../helpers/server.js';

/** The current code of `secret`, as an authenticator app shows it; `stepsAhead` 1 is the next one (a clock a little fast). */
export function codeOf(secret: string, stepsAhead = 0): Promise<string> {
  return generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 * stepsAhead });
}

/** A 6-digit code that is not the current one for `secret`. */
export async function wrongCodeOf(secret: string): Promise<string> {
  const right = await codeOf(secret);
  return String((Number(right) + 500_000) % 1_000_000).padStart(6, '0');
}

/** Enrols a TOTP (and recovery codes) for `username` directly in the store; returns the secret and the codes. */
export async function enrolTotp(t: TestServer, username: string): Promise<{ secret: string; codes: string[] }> {
  const secret = newTotpSecret();
  const { codes, hashes } = newRecoveryCodes();
  await t.server.store.accounts.update(username, { secondFactors: writeSecondFactors({ totp: { secret, enrolledAt: Date.now() }, passkeys: [], recoveryCodes: hashes }) });
  return { secret, codes };
}

/** An authorization for `clientId` opened in `browser`, the password typed: the page that follows. */
export async function signIn(
  t: TestServer,
  browser: Browser,
  options: { username?: string; scope?: string; clientId?: 'web-app' | 'confidential-web' } = {},
): Promise<{ request: AuthorizationRequest; page: Page }> {
  const request = await authorizationRequest(t, options.clientId ?? 'web-app', { scope: options.scope ?? 'openid notes:read', resource: NOTES });
  let page = await browser.go(request.url, {}, REDIRECT);
  page = await browser.submit(findForm(page, '/login'), { username: options.username ?? 'alice', password: PASSWORD }, undefined, REDIRECT);
  return { request, page };
}

/** The page is the second-factor step (not consent, not the app). */
export function isSecondFactorPage(page: Page): boolean {
  return page.forms.some((f) => /\/second-factor$/.test(f.action));
}

/** Allows the consent page as offered (or with `scopes` ticked) and redeems the code. */
export async function consentAndRedeem(browser: Browser, page: Page, request: AuthorizationRequest, scopes?: string[]) {
  const done = await browser.submit(findForm(page, '/confirm'), scopes ? { scope: scopes } : {}, undefined, REDIRECT);
  return redeem(done, request);
}

/** Redeems the code the browser was sent back to the app with. */
export async function redeem(done: Page, request: AuthorizationRequest) {
  if (!done.url.startsWith(REDIRECT)) throw new Error(`not back at the app: ${done.url} (${done.status}) ${done.html.replace(/\s+/g, ' ').slice(0, 300)}`);
  const tokens = await client.authorizationCodeGrant(request.config, new URL(done.url), { pkceCodeVerifier: request.verifier, expectedState: request.state });
  return {
    tokens,
    access: jwt(tokens.access_token).payload as Record<string, unknown>,
    id: tokens.id_token ? (jwt(tokens.id_token).payload as Record<string, unknown>) : undefined,
  };
}

export interface AuditLine {
  event: string;
  outcome: string;
  actor?: string;
  details?: Record<string, unknown>;
}

/** Every audit record written so far (the server runs with `audit: { sink: 'file' }`). */
export async function auditRecords(t: TestServer): Promise<{ records: AuditLine[]; text: string }> {
  await t.server.audit.flush();
  const dir = join(t.dataDir, 'audit');
  const text = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
  return { records: text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as AuditLine), text };
}

export { Browser, findForm, PASSWORD, REDIRECT, NOTES };
