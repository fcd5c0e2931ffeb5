/**
 * Consent and least privilege, over real HTTP as a person's browser drives the pages:
 * scopes a role does not allow are shown as not available and never issued (also after a
 * role is taken away), dangerous scopes are asked every time and live shorter, remembered
 * consent covers only the client it was given to, and every decision is logged with its scopes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.js';
import { Browser, findForm, type Page } from '../helpers/browser-driver.js';
import { fixtureConfig, NOTES, PASSWORD, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { client, jwt } from '../helpers/rp.js';
import { createAccountService } from '../../src/accounts/service.js';

function policyConfig() {
  const base = fixtureConfig();
  const [notes, ...others] = base.resources!;
  return {
    resources: [
      {
        ...notes!,
        scopes: {
          'notes:read': { description: 'Read your notes', tools: ['list_notes', 'read_note'] },
          'notes:write': { description: 'Create and edit notes', tools: ['add_note'] },
          'notes:delete': { description: 'Delete notes', dangerous: true, accessTokenTtl: 120, tools: ['delete_note'] },
          'notes:admin': { description: 'Manage everyone’s notes', allow: ['role:admin', 'user:carol'] },
        },
      },
      ...others,
    ],
    clients: [
      ...base.clients!,
      // two hosted (web) clients with the same name; web-app is native, and native clients always see the page
      { client_id: 'portal', client_name: 'Portal', token_endpoint_auth_method: 'none' as const, redirect_uris: [REDIRECT], application_type: 'web' as const },
      { client_id: 'portal-twin', client_name: 'Portal', token_endpoint_auth_method: 'none' as const, redirect_uris: [REDIRECT], application_type: 'web' as const },
    ],
  };
}

/** Starts an authorization for `clientId` in `browser`, signing in as `username` when asked; stops at the consent page or the redirect. */
async function start(t: TestServer, browser: Browser, clientId: string, scope: string, username = 'alice') {
  const request = await authorizationRequest(t, clientId, { scope, resource: NOTES });
  let page = await browser.go(request.url, {}, REDIRECT);
  const login = page.forms.find((f) => f.action.endsWith('/login'));
  if (login) page = await browser.submit(login, { username, password: PASSWORD }, undefined, REDIRECT);
  return { request, page };
}

async function finish(browser: Browser, page: Page, ticked: string[]) {
  return browser.submit(findForm(page, '/confirm'), { scope: ticked }, undefined, REDIRECT);
}

async function redeem(request: Awaited<ReturnType<typeof authorizationRequest>>, done: Page) {
  return client.authorizationCodeGrant(request.config, new URL(done.url), { pkceCodeVerifier: request.verifier, expectedState: request.state });
}

/** The scope checkboxes on a consent page: value → { checked, disabled }. */
function boxes(page: Page) {
  const out = new Map<string, { checked: boolean; disabled: boolean }>();
  for (const m of page.html.matchAll(/<input type="checkbox" name="scope" value="([^"]+)"([^>]*)>/g)) {
    out.set(m[1]!, { checked: / checked/.test(m[2]!), disabled: / disabled/.test(m[2]!) });
  }
  return out;
}

describe('consent policy', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ store: 'sqlite', config: policyConfig(), users: { alice: [], bob: ['admin'], carol: [] } });
  });
  after(() => t?.stop());

  test('the page names the tools each scope unlocks, and shows a scope the role does not allow as not available', async () => {
    const browser = new Browser();
    const { page } = await start(t, browser, 'web-app', 'notes:read notes:delete notes:admin');
    assert.match(page.html, /<code>list_notes<\/code>, <code>read_note<\/code>/);
    assert.match(page.html, /<code>delete_note<\/code>/);
    const b = boxes(page);
    assert.deepEqual(b.get('0:notes:read'), { checked: true, disabled: false });
    assert.deepEqual(b.get('0:notes:delete'), { checked: false, disabled: false }, 'a dangerous scope is never preselected');
    assert.deepEqual(b.get('0:notes:admin'), { checked: false, disabled: true }, 'not available, but shown');
    assert.match(page.html, /Not available to you/);
    assert.match(page.html, /remembered for this app and these servers for <strong>365 days<\/strong>/);

    // a forged form ticking the unavailable scope gets nothing more
    const { request } = { request: await authorizationRequest(t, 'web-app', { scope: 'notes:read notes:admin', resource: NOTES }) };
    const forged = await browser.go(request.url, {}, REDIRECT);
    const done = await finish(browser, forged, ['0:notes:read', '0:notes:admin']);
    const tokens = await redeem(request, done);
    assert.equal(jwt(tokens.access_token).payload.scope, 'notes:read');
    assert.equal(tokens.scope, 'notes:read', 'the client learns the granted scope in the token response');
  });

  test('unticking everything denies cleanly: access_denied back to the client', async () => {
    const browser = new Browser();
    const { request, page } = await start(t, browser, 'portal', 'notes:read notes:write');
    const done = await finish(browser, page, []);
    const callback = new URL(done.url);
    assert.equal(callback.searchParams.get('error'), 'access_denied');
    assert.equal(callback.searchParams.get('state'), request.state);
    assert.equal(callback.searchParams.get('iss'), t.issuer);
  });

  test('who may have a scope: by role and by user name', async () => {
    for (const username of ['bob', 'carol']) {
      const browser = new Browser();
      const { request, page } = await start(t, browser, 'web-app', 'notes:read notes:admin', username);
      assert.deepEqual(boxes(page).get('0:notes:admin'), { checked: true, disabled: false }, username);
      const tokens = await redeem(request, await finish(browser, page, ['0:notes:read', '0:notes:admin']));
      assert.equal(jwt(tokens.access_token).payload.scope, 'notes:read notes:admin', username);
    }
  });

  test('a role taken away: the next refresh no longer carries its scope', async () => {
    const accounts = createAccountService(t.server.store.accounts);
    await accounts.create('dave', PASSWORD, ['admin']);
    const browser = new Browser();
    const { request, page } = await start(t, browser, 'web-app', 'notes:read notes:admin', 'dave');
    const tokens = await redeem(request, await finish(browser, page, ['0:notes:read', '0:notes:admin']));
    assert.equal(jwt(tokens.access_token).payload.scope, 'notes:read notes:admin');
    await accounts.setRoles('dave', []);
    const refreshed = await client.refreshTokenGrant(request.config, tokens.refresh_token!);
    assert.equal(jwt(refreshed.access_token).payload.scope, 'notes:read');
  });

  test('a dangerous scope: shorter tokens, asked again every time, never granted from remembered consent', async () => {
    const browser = new Browser();
    const first = await start(t, browser, 'web-app', 'notes:read notes:delete', 'carol');
    const tokens = await redeem(first.request, await finish(browser, first.page, ['0:notes:read', '0:notes:delete']));
    const claims = jwt(tokens.access_token).payload;
    assert.equal(claims.scope, 'notes:read notes:delete');
    assert.equal(claims.exp! - claims.iat!, 120, 'a token with the dangerous scope lives its shorter lifetime');

    // the same request again: the page is shown again, the dangerous scope unticked
    const again = await start(t, browser, 'web-app', 'notes:read notes:delete', 'carol');
    assert.ok(again.page.forms.some((f) => f.action.endsWith('/confirm')), 'remembered consent did not skip the page');
    assert.deepEqual(boxes(again.page).get('0:notes:delete'), { checked: false, disabled: false });
    assert.deepEqual(boxes(again.page).get('0:notes:read'), { checked: true, disabled: true }, 'the ordinary scope is kept');
    const second = await redeem(again.request, await finish(browser, again.page, []));
    assert.equal(jwt(second.access_token).payload.scope, 'notes:read', 'not ticked again: not granted');
    assert.equal(jwt(second.access_token).payload.exp! - jwt(second.access_token).payload.iat!, 600, 'the server lifetime again');

    // and ticked again on a later request: granted again
    const third = await start(t, browser, 'web-app', 'notes:read notes:delete', 'carol');
    const tokens3 = await redeem(third.request, await finish(browser, third.page, ['0:notes:delete']));
    assert.equal(jwt(tokens3.access_token).payload.scope, 'notes:read notes:delete');
  });

  test('remembered consent skips the page for the same client only, never for another with the same name; a native client always sees it', async () => {
    const browser = new Browser();
    const first = await start(t, browser, 'portal', 'notes:read notes:write', 'bob');
    await redeem(first.request, await finish(browser, first.page, ['0:notes:read', '0:notes:write']));
    const same = await start(t, browser, 'portal', 'notes:read notes:write', 'bob');
    assert.ok(same.page.url.startsWith(REDIRECT), `remembered: straight back to the client, not ${JSON.stringify([...boxes(same.page)])}`);
    await redeem(same.request, same.page);
    const twin = await start(t, browser, 'portal-twin', 'notes:read', 'bob');
    assert.ok(twin.page.forms.some((f) => f.action.endsWith('/confirm')), 'another client, same name: asked');

    // a native app's identity cannot be verified: the page is shown every time, with what was allowed kept
    const native = await start(t, browser, 'web-app', 'notes:read', 'bob');
    await redeem(native.request, await finish(browser, native.page, ['0:notes:read']));
    const nativeAgain = await start(t, browser, 'web-app', 'notes:read', 'bob');
    assert.deepEqual(boxes(nativeAgain.page).get('0:notes:read'), { checked: true, disabled: true });
  });

  test('every decision is logged with the scopes offered, granted and refused', async () => {
    const browser = new Browser();
    const { request, page } = await start(t, browser, 'web-app', 'notes:read notes:write notes:admin');
    await redeem(request, await finish(browser, page, ['0:notes:read']));
    const offered = t.logs.filter((l) => l.event === 'consent.offered').at(-1) as { resources: { asked: string[]; unavailable: string[] }[] };
    assert.deepEqual(offered.resources[0]!.unavailable, ['notes:admin']);
    assert.ok(offered.resources[0]!.asked.includes('notes:write'));
    const granted = t.logs.filter((l) => l.event === 'consent.granted').at(-1) as { resources: { granted: string[]; refused: string[] }[]; grantId: string };
    assert.ok(granted.grantId);
    assert.ok(granted.resources[0]!.refused.includes('notes:write'));
    assert.ok(!granted.resources[0]!.granted.includes('notes:admin'));

    // and the audit log carries the same decision, for this MCP server
    await t.server.audit.flush();
    const audit = readFileSync(join(t.dataDir, 'audit', 'audit.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; client?: string; resource?: string; details?: Record<string, string[] | string> });
    const mine = (event: string) => audit.filter((r) => r.event === event && r.client === 'web-app').at(-1)!;
    assert.equal(mine('consent.offered').resource, NOTES);
    assert.deepEqual(mine('consent.offered').details!.unavailable, ['notes:admin']);
    const decision = mine('consent.granted');
    assert.equal(decision.resource, NOTES);
    assert.deepEqual(decision.details!.scopes, ['notes:read']);
    assert.ok((decision.details!.refused as string[]).includes('notes:write'));
    assert.equal(decision.details!.grantId, granted.grantId);
  });
});
