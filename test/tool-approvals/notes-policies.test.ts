/**
 * Approval policy, end to end with the notes example: a trusted machine client runs the tool
 * with no one asked (`ask: never`); another machine client, with no person behind its token,
 * gets a clear refusal; a role approves once per authorization (`once_per_session`) with a
 * second factor (`secondFactor: always`: a wrong code is refused); and a request nobody decides
 * expires into a clear error, the tool never run.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { exampleNotesResource, SECRET } from '../helpers/fixtures.js';
import { findForm } from '../helpers/browser-driver.js';
import { connectAfterSignIn, NotesServer, recordingFetch, RegisteredHostProvider, textOf, type ToolResult } from '../helpers/mcp-client.js';
import { codeOf, enrolTotp, wrongCodeOf } from '../second-factors/support.js';
import { readAuditLog } from '../helpers/audit-records.js';
import { DENIAL_META } from '../../src/verifier/index.js';

const REDIRECT = 'http://127.0.0.1:9/callback';
const HOST_ID = 'mcp-host';
const ALL = ['notes:read', 'notes:write', 'notes:delete'];


type Result = ToolResult & { _meta?: Record<string, unknown> };
interface Denial {
  classification: string;
  approval_id?: string;
  approval_url?: string;
}

const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-approval-policies-'));
const spoolDir = mkdtempSync(join(tmpdir(), 'mcp-authz-approval-policies-spool-'));
let notes: NotesServer;
let as: TestServer;
const clients: Client[] = [];

const denialOf = (result: Result) => result._meta?.[DENIAL_META] as Denial | undefined;

/** A tools/call straight to the notes server with `token` (a stateless server takes it without a session). */
async function rawCall(token: string, name: string, args: Record<string, unknown>): Promise<Result> {
  const res = await fetch(notes.url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: args } }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { result?: Result; error?: unknown };
  assert.ok(body.result, JSON.stringify(body));
  return body.result;
}

async function serviceToken(clientId: string): Promise<string> {
  const res = await fetch(`${as.issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: ALL.join(' '), resource: notes.url }),
  });
  const body = (await res.json()) as { access_token?: string; scope?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.match(body.scope ?? '', /notes:delete/);
  return body.access_token!;
}

async function connect(username: string): Promise<{ client: Client; person: RegisteredHostProvider }> {
  const person = new RegisteredHostProvider(username, { clientId: HOST_ID, redirectUri: REDIRECT, consent: ALL.map((scope) => `0:${scope}`) });
  const client = await connectAfterSignIn(`policies-${username}`, notes.url, person, recordingFetch([]));
  clients.push(client);
  return { client, person };
}

const call = (client: Client, name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }) as Promise<Result>;
const addNote = async (client: Client, text: string) => (JSON.parse(textOf(await call(client, 'add_note', { text }))) as { id: string }).id;
const noteIds = async (client: Client) => (JSON.parse(textOf(await call(client, 'list_notes', {}))) as { notes: { id: string }[] }).notes.map((n) => n.id);

before(async () => {
  notes = new NotesServer();
  await notes.listen();
  const resource = exampleNotesResource(notes.url);
  as = await startServer({
    store: 'sqlite',
    dataDir,
    users: { alice: [], bob: ['ops'] },
    config: {
      resources: [
        {
          ...resource,
          scopes: {
            ...resource.scopes,
            'notes:delete': { description: 'Delete notes', dangerous: true, tools: ['delete_note'], allow: ['user:alice', 'role:ops', 'client:trusted-agent', 'client:other-agent'] },
          },
          resourceServerClients: ['notes-server'],
        },
      ],
      clients: [
        { client_id: HOST_ID, client_name: 'Notes agent', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] },
        { client_id: 'notes-server', client_secret: SECRET, grant_types: ['client_credentials'], resources: [notes.url] },
        { client_id: 'trusted-agent', client_secret: SECRET, grant_types: ['client_credentials'], scope: ALL.join(' '), resources: [notes.url] },
        { client_id: 'other-agent', client_secret: SECRET, grant_types: ['client_credentials'], scope: ALL.join(' '), resources: [notes.url] },
      ],
      toolApprovals: {
        requestTtl: 2,
        tokenTtl: 60,
        pollInterval: 1,
        policies: [
          { client: 'trusted-agent', ask: 'never' },
          { role: 'ops', tool: 'delete_note', ask: 'once_per_session', secondFactor: 'always' },
        ],
      },
    },
  });
  notes.protectWith(as.issuer, { resourceServer: { clientId: 'notes-server', clientSecret: SECRET }, toolCalls: { spoolDir, flushIntervalMs: 100 } });
});

after(async () => {
  for (const client of clients) await client.close();
  await notes?.stop();
  await as?.stop();
  for (const dir of [dataDir, spoolDir]) rmSync(dir, { recursive: true, force: true });
});

describe('approval policy with the notes example', { timeout: 120_000 }, () => {
  it('ask: never — a trusted internal client runs the tool with no one asked (approved by policy, in the audit log)', async () => {
    const token = await serviceToken('trusted-agent');
    const added = JSON.parse(textOf(await rawCall(token, 'add_note', { text: 'nightly' }))) as { id: string };
    const deleted = await rawCall(token, 'delete_note', { id: added.id });
    assert.ok(!deleted.isError, textOf(deleted));
    await as.server.audit.flush();
    const granted = readAuditLog(dataDir).records.filter((r) => r.event === 'approval.granted' && r.details?.tool === 'delete_note');
    assert.ok(granted.some((r) => r.details?.by === 'policy'), JSON.stringify(granted));
  });

  it('no person behind the token and no policy: a clear refusal, the tool never runs', async () => {
    const token = await serviceToken('other-agent');
    const added = JSON.parse(textOf(await rawCall(token, 'add_note', { text: 'kept' }))) as { id: string };
    const refused = await rawCall(token, 'delete_note', { id: added.id });
    assert.equal(refused.isError, true);
    assert.equal(denialOf(refused)?.classification, 'approval_unavailable');
    const listed = JSON.parse(textOf(await rawCall(token, 'list_notes', {}))) as { notes: { id: string }[] };
    assert.deepEqual(listed.notes.map((n) => n.id), [added.id]);
  });

  it('once_per_session with a second factor: a wrong code is refused, the right one approves, later calls of the tool in that authorization run', async () => {
    const { client, person } = await connect('bob');
    const { secret } = await enrolTotp(as, 'bob');
    const first = await addNote(client, 'first');
    const second = await addNote(client, 'second');
    const asked = denialOf(await call(client, 'delete_note', { id: first }));
    assert.equal(asked?.classification, 'approval_required');

    let page = await person.browser.go(asked.approval_url!);
    assert.match(page.html, /authenticator app, or a recovery code/, 'the code is asked with the approval');
    page = await person.browser.submit(findForm(page, '/approvals/'), { code: await wrongCodeOf(secret) }, { name: 'decision', value: 'approve' });
    assert.equal(page.status, 401);
    page = await person.browser.submit(findForm(page, '/approvals/'), { code: '' }, { name: 'decision', value: 'approve' });
    assert.equal(page.status, 401, 'no code, no approval');
    page = await person.browser.submit(findForm(page, '/approvals/'), { code: await codeOf(secret) }, { name: 'decision', value: 'approve' });
    assert.equal(page.status, 200);
    assert.match(page.html, /Approved/);

    assert.ok(!(await call(client, 'delete_note', { id: first })).isError);
    // once per session: the same tool with other arguments runs without asking again
    const again = await call(client, 'delete_note', { id: second });
    assert.ok(!again.isError, textOf(again));
    assert.deepEqual(await noteIds(client), []);
    await as.server.audit.flush();
    const granted = readAuditLog(dataDir).records.filter((r) => r.event === 'approval.granted' && r.details?.tool === 'delete_note');
    assert.ok(granted.some((r) => r.details?.by === 'person' && r.details?.secondFactor === true), 'approved with the second factor');
    assert.ok(granted.some((r) => r.details?.by === 'policy'));
  });

  it('a request nobody decides expires: the retry gets a clear error, the tool never ran, the page says so', async () => {
    const { client, person } = await connect('alice');
    const id = await addNote(client, 'expiring');
    const asked = denialOf(await call(client, 'delete_note', { id }));
    assert.equal(asked?.classification, 'approval_required');
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const page = await person.browser.go(asked.approval_url!);
    assert.match(page.html, /expired/);
    assert.equal(page.forms.filter((f) => f.action.includes('/approvals/')).length, 0, 'nothing left to approve');
    const expired = await call(client, 'delete_note', { id });
    assert.equal(expired.isError, true);
    assert.equal(denialOf(expired)?.classification, 'approval_expired');
    assert.deepEqual(await noteIds(client), [id]);
  });
});
