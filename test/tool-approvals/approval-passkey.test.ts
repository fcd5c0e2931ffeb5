/**
 * A person whose second factor is a passkey approves a tool call with it, in Chromium with a
 * virtual authenticator (CDP `WebAuthn`): they sign in on the account pages from a browser with
 * no session, add the passkey, then approve the notes example's `delete_note` call with it; a
 * passkey answer to another request's challenge is refused. The issuer is `localhost`: WebAuthn
 * refuses IP addresses.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Browser as Chromium, BrowserContext, Page } from 'playwright-core';
import { startServer, type TestServer } from '../helpers/server.js';
import { exampleNotesResource, PASSWORD, SECRET } from '../helpers/fixtures.js';
import { collectCspViolations, launchBrowser } from '../helpers/browser.js';
import { connectAfterSignIn, NotesServer, recordingFetch, RegisteredHostProvider, textOf, type ToolResult } from '../helpers/mcp-client.js';
import { readAuditLog } from '../helpers/audit-records.js';
import { DENIAL_META } from '../../src/verifier/index.js';

const REDIRECT = 'http://127.0.0.1:9/callback';
const HOST_ID = 'mcp-host';


type Result = ToolResult & { _meta?: Record<string, unknown> };
const denialOf = (result: Result) => result._meta?.[DENIAL_META] as { classification: string; approval_url?: string } | undefined;

let notes: NotesServer;
let as: TestServer;
let client: Client;
let chromium: Chromium;
/** alice's browser: her session and the virtual authenticator holding her passkey, from the first test on */
let context: BrowserContext;

before(async () => {
  notes = new NotesServer();
  await notes.listen();
  const resource = exampleNotesResource(notes.url);
  as = await startServer({
    store: 'sqlite',
    issuerHost: 'localhost',
    users: { alice: [] },
    config: {
      resources: [
        {
          ...resource,
          scopes: { ...resource.scopes, 'notes:delete': { description: 'Delete notes', dangerous: true, tools: ['delete_note'] } },
          resourceServerClients: ['notes-server'],
        },
      ],
      clients: [
        { client_id: HOST_ID, client_name: 'Notes agent', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] },
        { client_id: 'notes-server', client_secret: SECRET, grant_types: ['client_credentials'], resources: [notes.url] },
      ],
    },
  });
  notes.protectWith(as.issuer, { resourceServer: { clientId: 'notes-server', clientSecret: SECRET }, toolCalls: { report: false } });
  client = await connectAfterSignIn('approval-passkey', notes.url, new RegisteredHostProvider('alice', { clientId: HOST_ID, redirectUri: REDIRECT, consent: ['0:notes:read', '0:notes:write', '0:notes:delete'] }), recordingFetch([]));
  chromium = await launchBrowser();
});

after(async () => {
  await context?.close();
  await client?.close();
  await chromium?.close();
  await notes?.stop();
  await as?.stop();
});

const call = (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }) as Promise<Result>;
const addNote = async (text: string) => (JSON.parse(textOf(await call('add_note', { text }))) as { id: string }).id;

async function submitAndWait(page: Page, selector: string): Promise<void> {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

describe('approving a tool call with a passkey', { timeout: 120_000 }, () => {
  it('signs in on the account pages, adds a passkey, approves delete_note with it; the call runs', async () => {
    context = await chromium.newContext();
    {
      const page = await context.newPage();
      const csp = await collectCspViolations(page);
      const cdp = await context.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
      });

      // no session in this browser: the account page's sign-in, then back to it
      await page.goto(`${as.issuer}/account/security`);
      await submitAndWait(page, 'a.sign-in-link');
      await page.fill('input[name="username"]', 'alice');
      await page.fill('input[name="password"]', PASSWORD);
      await submitAndWait(page, 'button[type="submit"]:text("Sign in")');
      assert.match(page.url(), /\/account\/security$/);
      await page.fill('#passkey-name', 'Laptop');
      await submitAndWait(page, 'button:text("Add a passkey")');
      await submitAndWait(page, 'a:text("I have saved them")');

      const id = await addNote('Q3 plan');
      const asked = denialOf(await call('delete_note', { id }));
      assert.equal(asked?.classification, 'approval_required');
      await page.goto(asked.approval_url!);
      assert.match((await page.textContent('main')) ?? '', /Delete note 'Q3 plan'/);
      await submitAndWait(page, 'button:text("Approve with a passkey")');
      assert.match((await page.textContent('main')) ?? '', /Approved/);
      assert.deepEqual(csp, [], 'no CSP violation');

      const ran = await call('delete_note', { id });
      assert.ok(!ran.isError, textOf(ran));
      await as.server.audit.flush();
      const granted = readAuditLog(as.dataDir).records.filter((r) => r.event === 'approval.granted');
      assert.ok(granted.some((r) => r.details?.by === 'person' && r.details?.secondFactor === true));
    }
  });

  it('a passkey answer without this request’s challenge is refused; the call stays waiting', async () => {
    const page = await context.newPage();
    try {
      const id = await addNote('kept');
      const asked = denialOf(await call('delete_note', { id }));
      await page.goto(asked!.approval_url!);
      // a made-up credential, no challenge fetched: the form posted as is
      const forged = JSON.stringify({ id: 'x', rawId: 'x', type: 'public-key', response: {} });
      await page.locator('form.passkey-form input[name="credential"]').evaluate((input, value) => {
        (input as unknown as { value: string }).value = value;
      }, forged);
      // submit() skips the page script's submit handler: the made-up credential goes as it is
      await Promise.all([page.waitForNavigation(), page.locator('form.passkey-form').evaluate((form) => (form as unknown as { submit(): void }).submit())]);
      assert.match((await page.textContent('main')) ?? '', /passkey could not be checked/);
      const still = denialOf(await call('delete_note', { id }));
      assert.equal(still?.classification, 'approval_required');
    } finally {
      await page.close();
    }
  });
});
