/**
 * Sign-in through the test upstream (./oidc-upstream.ts) with the fetch-driven browser of
 * test/helpers/browser-driver.ts: our login page → the connection's link → the upstream's
 * form → back to us. Shared by the OIDC connection tests that need no real Chromium.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigInput } from '../../src/config/schema.js';
import { Browser, findForm, type Page } from '../helpers/browser-driver.js';
import { NOTES, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest, type AuthorizationRequest } from '../helpers/flows.js';
import { client } from '../helpers/rp.js';
import type { TestServer } from '../helpers/server.js';

export type ConnectionInput = NonNullable<ConfigInput['connections']>[number];

/** The href of connection `id`'s link on our login page. */
export function connectionLink(page: Page, id: string): string {
  const match = new RegExp(`<a [^>]*href="([^"]+)"[^>]*data-connection="${id}"`).exec(page.html);
  assert.ok(match, `no link to connection ${id} on ${page.url} (${page.status})`);
  return new URL(match[1]!.replace(/&#x2F;/g, '/').replace(/&amp;/g, '&'), page.url).href;
}

export interface UpstreamSignIn {
  request: AuthorizationRequest;
  /** the upstream's login form, or where the browser was sent instead */
  page: Page;
}

/** An MCP client's request to us, our login page, the link of `connection`: the page the upstream shows. */
export async function toUpstream(browser: Browser, t: TestServer, connection: string, scope = 'notes:read', clientId = 'web-app', params: Record<string, string> = {}): Promise<UpstreamSignIn> {
  const request = await authorizationRequest(t, clientId, { scope, resource: NOTES, ...params });
  const login = await browser.go(request.url);
  return { request, page: await browser.go(connectionLink(login, connection)) };
}

/**
 * Signs in at the upstream as `login` (or cancels). With `stopAt`, stops at the first URL
 * starting with it (e.g. our callback, to replay it); otherwise follows on to our next page.
 */
export function atUpstream(browser: Browser, upstreamPage: Page, login: string, options: { cancel?: boolean; stopAt?: string } = {}): Promise<Page> {
  return browser.submit(findForm(upstreamPage, '/interaction/'), { login }, { name: 'go', value: options.cancel ? 'cancel' : 'in' }, options.stopAt);
}

/** Allows on our consent page (as preselected) and redeems the code: our tokens. */
export async function consentAndRedeem(browser: Browser, consent: Page, request: AuthorizationRequest) {
  assert.match(consent.html, /Allow access\?/, `expected our consent page, got ${consent.status}: ${consent.html.replace(/\s+/g, ' ').slice(0, 300)}`);
  const back = await browser.submit(findForm(consent, '/confirm'), {}, undefined, REDIRECT);
  return client.authorizationCodeGrant(request.config, new URL(back.url), { pkceCodeVerifier: request.verifier, expectedState: request.state }, { resource: NOTES });
}

/** The title of one of our pages. */
export const titleOf = (page: Page) => /<h1>([^<]*)<\/h1>/.exec(page.html)?.[1]?.trim();

/** The audit records written so far (flush first). */
export function auditRecords(t: TestServer) {
  return readFileSync(join(t.dataDir, 'audit', 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; client?: string; actor?: string; details?: Record<string, unknown> });
}
