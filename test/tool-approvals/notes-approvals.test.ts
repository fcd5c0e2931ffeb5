/**
 * Tool calls a person approves, end to end: the MCP SDK client, the notes example (its
 * `delete_note` and `share_note` need an approval per call) and the real authorization server.
 * The three ways to reach the person — URL-mode elicitation (approved in Chromium), the
 * structured denial whose retry echoes the context id (refused, then approved), and the
 * decoupled approval on the connected-apps page while the agent polls — each end to end; the
 * tool never runs before the approval, an approval is good for one call with these arguments,
 * and afterwards the audit chain verifies and no recipient address is anywhere.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { exampleNotesResource, SECRET } from '../helpers/fixtures.js';
import { findForm } from '../helpers/browser-driver.js';
import { collectCspViolations, launchBrowser } from '../helpers/browser.js';
import { connectAfterSignIn, NotesServer, recordingFetch, RegisteredHostProvider, textOf, type ToolResult } from '../helpers/mcp-client.js';
import { runCli } from '../helpers/cli.js';
import { APPROVAL_ID_META, DENIAL_META } from '../../src/verifier/index.js';

const REDIRECT = 'http://127.0.0.1:9/callback';
const HOST_ID = 'mcp-host';
const CAPABILITIES_META = 'io.modelcontextprotocol/clientCapabilities';
/** 312 addresses that must never leave the notes server: not in approvals, reports, logs or the audit trail */
const RECIPIENTS = Array.from({ length: 312 }, (_, i) => `person${i}.secret-recipient@example.org`);


interface Denial {
  classification: string;
  status?: string;
  approval_id?: string;
  approval_url?: string;
  account_url?: string;
  interval?: number;
}

const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-approvals-'));
const spoolDir = mkdtempSync(join(tmpdir(), 'mcp-authz-approvals-spool-'));
let notes: NotesServer;
let as: TestServer | undefined;
let client: Client;
const alice = new RegisteredHostProvider('alice', { clientId: HOST_ID, redirectUri: REDIRECT, clientName: 'Notes agent (test)', consent: ['0:notes:read', '0:notes:write', '0:notes:delete', '0:notes:share'] });

const call = (name: string, args: Record<string, unknown>, meta?: Record<string, unknown>) =>
  client.callTool({ name, arguments: args, ...(meta ? { _meta: meta } : {}) }) as Promise<ToolResult & { _meta?: Record<string, unknown> }>;
const denialOf = (result: { _meta?: Record<string, unknown> }) => result._meta?.[DENIAL_META] as Denial | undefined;
const noteIds = async () => (JSON.parse(textOf(await call('list_notes', {}))) as { notes: { id: string }[] }).notes.map((n) => n.id);
const addNote = async (text: string) => (JSON.parse(textOf(await call('add_note', { text }))) as { id: string }).id;

before(async () => {
  notes = new NotesServer();
  await notes.listen();
  const resource = exampleNotesResource(notes.url);
  as = await startServer({
    store: 'sqlite',
    dataDir,
    users: { alice: [] },
    config: {
      resources: [
        {
          ...resource,
          scopes: {
            ...resource.scopes,
            'notes:delete': { description: 'Delete notes', dangerous: true, tools: ['delete_note'] },
            'notes:share': { description: 'Send notes to other people', dangerous: true, tools: ['share_note'] },
          },
          resourceServerClients: ['notes-server'],
        },
      ],
      clients: [
        { client_id: HOST_ID, client_name: 'Notes agent', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] },
        { client_id: 'notes-server', client_secret: SECRET, grant_types: ['client_credentials'], resources: [notes.url] },
      ],
      toolApprovals: { requestTtl: 300, tokenTtl: 60, pollInterval: 1, policies: [] },
    },
  });
  notes.protectWith(as.issuer, { resourceServer: { clientId: 'notes-server', clientSecret: SECRET }, toolCalls: { spoolDir, flushIntervalMs: 100 } });
  client = await connectAfterSignIn('approvals-test', notes.url, alice, recordingFetch([]));
});

after(async () => {
  await client?.close();
  await notes?.stop();
  await as?.stop();
  for (const dir of [dataDir, spoolDir]) rmSync(dir, { recursive: true, force: true });
});

describe('a person approves each call of a dangerous tool (notes example, MCP SDK client)', { timeout: 180_000 }, () => {
  it('(a) URL-mode elicitation: the call waits, the person approves in the browser, the retried call runs once', async () => {
    const id = await addNote('Q3 plan\nnumbers to check');
    const urlCapable = { [CAPABILITIES_META]: { elicitation: { url: {} } } };
    const refused = await call('delete_note', { id }, urlCapable).then(
      () => assert.fail('the call ran without an approval'),
      (err: unknown) => err,
    );
    assert.ok(refused instanceof UrlElicitationRequiredError, String(refused));
    const [elicitation] = refused.elicitations;
    assert.ok(elicitation && elicitation.mode === 'url');
    assert.match(elicitation.message, /Delete note 'Q3 plan'/);
    assert.deepEqual(await noteIds(), [id], 'not deleted yet');

    // the person opens the URL in the browser they signed in with
    const browser = await launchBrowser();
    try {
      const context = await browser.newContext();
      const origin = new URL(as!.issuer).origin;
      await context.addCookies([...alice.browser.jar.cookies.values()].map((c) => ({ name: c.name, value: c.value, url: `${origin}${c.path}` })));
      const page = await context.newPage();
      const violations = await collectCspViolations(page);
      await page.goto(elicitation.url);
      const main = (await page.textContent('main')) ?? '';
      assert.match(main, /Notes agent/, 'who asks');
      assert.match(main, /Delete note 'Q3 plan'/, 'what it will do');
      assert.match(main, /delete_note/, 'which tool');
      assert.match(main, new RegExp(notes.url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), 'which MCP server');
      await page.click('button[value="approve"]');
      await page.waitForSelector('text=Approved');
      assert.deepEqual(violations, []);
      await context.close();
    } finally {
      await browser.close();
    }

    const ran = await call('delete_note', { id }, urlCapable);
    assert.ok(!ran.isError, textOf(ran));
    assert.deepEqual(await noteIds(), [], 'deleted once approved');
    // the approval was used: the same call again asks again
    await assert.rejects(call('delete_note', { id }, urlCapable), (err) => err instanceof UrlElicitationRequiredError);
  });

  it('(b) structured denial: a refusal is a clear error and the note stays; the next request, approved, runs with the echoed context id — for these arguments only', async () => {
    const budget = await addNote('Budget');
    const other = await addNote('Other');
    const first = await call('delete_note', { id: budget });
    const asked = denialOf(first);
    assert.equal(first.isError, true);
    assert.equal(asked?.classification, 'approval_required');
    assert.ok(asked.approval_id && asked.approval_url);
    assert.match(textOf(first), /Delete note 'Budget'/);

    // the person refuses on the approval page
    let page = await alice.browser.go(asked.approval_url);
    assert.equal(page.status, 200);
    page = await alice.browser.submit(findForm(page, '/approvals/'), {}, { name: 'decision', value: 'refuse' });
    assert.match(page.html, /Refused/);
    const afterRefusal = await call('delete_note', { id: budget }, { [APPROVAL_ID_META]: asked.approval_id });
    assert.equal(afterRefusal.isError, true);
    assert.equal(denialOf(afterRefusal)?.classification, 'approval_denied');
    assert.deepEqual((await noteIds()).sort(), [budget, other].sort(), 'refused: nothing deleted');

    // asked again: a new request, approved this time
    const again = denialOf(await call('delete_note', { id: budget }));
    assert.equal(again?.classification, 'approval_required');
    assert.notEqual(again.approval_id, asked.approval_id, 'a refusal is not reopened');
    page = await alice.browser.go(again.approval_url!);
    page = await alice.browser.submit(findForm(page, '/approvals/'), {}, { name: 'decision', value: 'approve' });
    assert.match(page.html, /Approved/);
    // another note is other arguments: that approval does not cover it
    const otherCall = denialOf(await call('delete_note', { id: other }, { [APPROVAL_ID_META]: again.approval_id }));
    assert.equal(otherCall?.classification, 'approval_required');
    assert.notEqual(otherCall.approval_id, again.approval_id);
    const ran = await call('delete_note', { id: budget }, { [APPROVAL_ID_META]: again.approval_id });
    assert.ok(!ran.isError, textOf(ran));
    assert.deepEqual(await noteIds(), [other]);
  });

  it('(c) decoupled: the agent polls while the person approves on the connected-apps page; the summary counts recipients, the addresses stay on the MCP server', async () => {
    const id = await addNote('Launch announcement');
    const sentBefore = notes.store.sent;
    const first = denialOf(await call('share_note', { id, recipients: RECIPIENTS }));
    assert.equal(first?.classification, 'approval_required');
    assert.ok(first.approval_id && first.account_url);

    // the agent polls as told (every `interval` seconds, echoing the context id) until it runs
    const poll = (async () => {
      for (let attempt = 0; attempt < 60; attempt++) {
        const result = await call('share_note', { id, recipients: RECIPIENTS }, { [APPROVAL_ID_META]: first.approval_id });
        const denial = denialOf(result);
        if (!denial) return result;
        assert.equal(denial.classification, 'approval_required', 'still waiting');
        assert.equal(denial.approval_id, first.approval_id, 'polling never opens a second request');
        await new Promise((resolve) => setTimeout(resolve, (denial.interval ?? 1) * 1000));
      }
      throw new Error('the approval never came');
    })();

    // the person finds it among their connected apps
    let page = await alice.browser.go(first.account_url);
    assert.equal(page.status, 200);
    assert.match(page.html, /Waiting for your approval/);
    assert.match(page.html, /Send note &#39;Launch announcement&#39; to 312 recipients|Send note 'Launch announcement' to 312 recipients/);
    const link = /href="([^"]*\/approvals\/[^"]+)"/.exec(page.html)?.[1];
    assert.ok(link);
    page = await alice.browser.go(new URL(link.replace(/&amp;/g, '&'), as!.issuer).href);
    page = await alice.browser.submit(findForm(page, '/approvals/'), {}, { name: 'decision', value: 'approve' });
    assert.match(page.html, /Approved/);

    const ran = await poll;
    assert.ok(!ran.isError, textOf(ran));
    assert.equal(notes.store.sent - sentBefore, 312);
    page = await alice.browser.go(first.account_url);
    assert.doesNotMatch(page.html, /Launch announcement/, 'decided: no longer waiting');
  });

  it('afterwards: approvals and tool calls in one audit chain that verifies; no recipient address anywhere', async () => {
    await notes.verifier!.toolCalls.flush();
    await as!.server.audit.flush();
    const story = await runCli(['audit', 'search', '--subject', 'alice', '--tool', 'share_note'], { dataDir });
    assert.equal(story.code, 0, story.stderr);
    const events = story.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event);
    for (const event of ['approval.requested', 'approval.granted', 'approval.redeemed', 'tool.called']) assert.ok(events.includes(event), `${event} in ${events.join(', ')}`);
    const deletes = await runCli(['audit', 'search', '--subject', 'alice', '--tool', 'delete_note'], { dataDir });
    const deleteEvents = deletes.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event);
    assert.ok(deleteEvents.includes('approval.refused'), deleteEvents.join(', '));

    const logs = JSON.stringify(as!.logs);
    await as!.stop();
    as = undefined;
    const verified = await runCli(['audit', 'verify'], { dataDir });
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /^ok: /);

    // every file the authorization server and the MCP server wrote, and the AS log
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? files(path) : [path];
      });
    const written = [...files(dataDir), ...(existsSync(spoolDir) ? files(spoolDir) : [])].map((path) => readFileSync(path).toString('latin1')).join('\n');
    for (const haystack of [written, logs]) {
      assert.ok(!haystack.includes('secret-recipient@example.org'), 'a recipient address was stored or logged');
    }
    assert.ok(written.includes('tool.called'), 'the search did look at the audit log');
  });
});
