/**
 * Tool call reports end to end: the real authorization server, the notes example (the verifier
 * with `resourceServer` credentials) and the MCP SDK client. Every tools/call lands in the
 * audit log as 'tool.called' (outcome, duration, redacted arguments), the chain verifies, the
 * CLI tells the person's story; with the authorization server down the records wait in the
 * spool file and arrive, once each, when it is back; a wrong secret keeps them spooled and says
 * so; 'local' mode sends nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startServer, type StartOptions, type TestServer } from '../helpers/server.js';
import { exampleNotesResource, SECRET } from '../helpers/fixtures.js';
import { connectAfterSignIn, NotesServer, recordingFetch, RegisteredHostProvider, textOf, type Exchange, type ToolResult } from '../helpers/mcp-client.js';
import { runCli } from '../helpers/cli.js';
import { authenticateRequest, createVerifier, type ToolCallRecord } from '../../src/verifier/index.js';
import { SPOOL_FILE } from '../../src/verifier/report-spool.js';

const REDIRECT = 'http://127.0.0.1:9/callback';
const CLIENT_ID = 'mcp-host';
const SENSITIVE = 'pin-4711-never-logged';


type AuditRecord = Record<string, unknown> & { event: string; details?: Record<string, unknown> };

const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-tool-reports-'));
const spoolDir = mkdtempSync(join(tmpdir(), 'mcp-authz-spool-test-'));
const otherSpool = mkdtempSync(join(tmpdir(), 'mcp-authz-spool-wrong-'));
const spoolFile = join(spoolDir, SPOOL_FILE);
const problems: string[] = [];
let notes: NotesServer;
let as: TestServer | undefined;
let asOptions: StartOptions;
let port = 0;
let client: Client;
const alice = new RegisteredHostProvider('alice', { clientId: CLIENT_ID, redirectUri: REDIRECT });

const audit = async (): Promise<AuditRecord[]> => {
  await as?.server.audit.flush();
  const file = join(dataDir, 'audit', 'audit.jsonl');
  return readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as AuditRecord);
};
const toolCalls = async () => (await audit()).filter((r) => r.event === 'tool.called');
const call = (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }) as Promise<ToolResult>;
const spooled = () => (existsSync(spoolFile) ? readFileSync(spoolFile, 'utf8').trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ToolCallRecord) : []);

before(async () => {
  notes = new NotesServer();
  await notes.listen();
  asOptions = {
    store: 'sqlite',
    dataDir,
    users: { alice: [] },
    config: {
      resources: [{ ...exampleNotesResource(notes.url), resourceServerClients: ['notes-server'] }],
      clients: [
        { client_id: CLIENT_ID, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] },
        { client_id: 'notes-server', client_secret: SECRET, grant_types: ['client_credentials'], resources: [notes.url] },
      ],
    },
  };
  as = await startServer(asOptions);
  port = Number(new URL(as.issuer).port);
  notes.protectWith(as.issuer, {
    resourceServer: { clientId: 'notes-server', clientSecret: SECRET },
    toolCalls: { spoolDir, flushIntervalMs: 100, onError: (err) => problems.push(err.message) },
    sensitiveArguments: { add_note: ['text'] },
  });
  const exchanges: Exchange[] = [];
  client = await connectAfterSignIn('tool-reports-test', notes.url, alice, recordingFetch(exchanges));
});

after(async () => {
  await client?.close();
  await notes?.stop();
  await as?.stop();
  for (const dir of [dataDir, spoolDir, otherSpool]) rmSync(dir, { recursive: true, force: true });
});

describe('tool call reports: MCP SDK client → notes example (verifier) → mcp-authz audit log', () => {
  let aliceId = '';

  it('reports every tool call with its outcome, duration and redacted arguments as tool.called', async () => {
    const added = await call('add_note', { text: SENSITIVE });
    assert.ok(!added.isError);
    assert.ok(!(await call('list_notes', {})).isError);
    const missing = await call('read_note', { id: 'no-such-note' });
    assert.equal(missing.isError, true, textOf(missing));

    await notes.verifier!.toolCalls.flush();
    const records = await toolCalls();
    assert.deepEqual(
      records.map((r) => [r.details!.tool, r.outcome]),
      [
        ['add_note', 'success'],
        ['list_notes', 'success'],
        ['read_note', 'failure'],
      ],
    );
    const account = await as!.server.store.accounts.findByUsername('alice');
    aliceId = account!.id;
    const claims = JSON.parse(Buffer.from(alice.accessToken.split('.')[1]!, 'base64url').toString()) as { jti: string; grant_id?: string };
    for (const r of records) {
      assert.equal(r.actor, aliceId);
      assert.equal(r.client, CLIENT_ID);
      assert.equal(r.resource, notes.url);
      assert.equal(r.details!.reportedBy, 'notes-server');
      assert.equal(r.details!.jti, claims.jti);
      assert.equal(typeof r.details!.grantId, 'string');
      assert.ok(typeof r.details!.durationMs === 'number' && r.details!.durationMs >= 0);
      assert.match(String(r.details!.argumentsDigest), /^sha-256:[A-Za-z0-9_-]{43}$/);
    }
    assert.equal(records[0]!.details!.arguments, '{"text":"[redacted]"}');
    assert.equal(records[2]!.details!.arguments, '{"id":"no-such-note"}');
    assert.deepEqual(problems, []);
  });

  it('never writes a sensitive argument to the audit log or the server logs', async () => {
    const auditText = readFileSync(join(dataDir, 'audit', 'audit.jsonl'), 'utf8');
    assert.ok(!auditText.includes(SENSITIVE));
    assert.ok(!JSON.stringify(as!.logs).includes(SENSITIVE));
    assert.ok(!auditText.includes(alice.accessToken));
  });

  it('spools the records while the authorization server is down and delivers them, once each, when it is back', async () => {
    await as!.stop();
    as = undefined;
    problems.length = 0;
    // the verifier keeps the keys and the verified token: the MCP server goes on serving
    assert.ok(!(await call('add_note', { text: SENSITIVE })).isError);
    assert.ok(!(await call('list_notes', {})).isError);
    await notes.verifier!.toolCalls.flush();
    const waiting = spooled();
    assert.deepEqual(
      waiting.map((r) => r.tool),
      ['add_note', 'list_notes'],
    );
    assert.ok(!readFileSync(spoolFile, 'utf8').includes(SENSITIVE), 'the spool holds the redacted arguments only');
    assert.ok(problems.some((p) => /did not answer/.test(p) && /kept in/.test(p)), problems.join('\n'));

    as = await startServer({ ...asOptions, port });
    await notes.verifier!.toolCalls.flush();
    assert.equal(existsSync(spoolFile), false, 'the spool is emptied once delivered');
    const records = await toolCalls();
    const ids = records.map((r) => r.details!.executionId);
    for (const record of waiting) assert.ok(ids.includes(record.id), `${record.id} delivered`);
    assert.equal(new Set(ids).size, ids.length, 'no execution recorded twice');

    // a retry of one already delivered (as after a lost answer) is accepted, not recorded again
    const retry = await fetch(`${as.issuer}/tool-executions`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`notes-server:${SECRET}`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ executions: [waiting[0]] }),
    });
    assert.deepEqual(await retry.json(), { accepted: 1, rejected: [] });
    assert.equal((await toolCalls()).length, records.length);
  });

  it('a wrong resource-server secret: 401, said through onError, and the record stays in the spool (fetch adapter)', async () => {
    const errors: string[] = [];
    const verifier = createVerifier({
      issuer: as!.issuer,
      resource: notes.url,
      revocation: false,
      resourceServer: { clientId: 'notes-server', clientSecret: 'not-the-secret' },
      toolCalls: { spoolDir: otherSpool, flushIntervalMs: 60_000, onError: (err) => errors.push(err.message) },
    });
    try {
      const request = new Request(notes.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'list_notes', arguments: {} } }),
      });
      const auth = await authenticateRequest(verifier, request);
      assert.ok(!(auth instanceof Response));
      auth.report(new Response(JSON.stringify({ jsonrpc: '2.0', id: 7, result: { content: [] } }), { headers: { 'content-type': 'application/json' } }));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await verifier.toolCalls.flush();
      assert.ok(errors.some((e) => /401/.test(e)), errors.join('\n'));
      const kept = readFileSync(join(otherSpool, SPOOL_FILE), 'utf8').trim().split('\n');
      assert.equal(kept.length, 1);
      assert.equal((JSON.parse(kept[0]!) as ToolCallRecord).outcome, 'success');
    } finally {
      await verifier.close();
    }

    // the next process with the right secret and the same spool directory sends it first
    const keptId = (JSON.parse(readFileSync(join(otherSpool, SPOOL_FILE), 'utf8').trim().split('\n')[0]!) as ToolCallRecord).id;
    const next = createVerifier({
      issuer: as!.issuer,
      resource: notes.url,
      revocation: false,
      resourceServer: { clientId: 'notes-server', clientSecret: SECRET },
      toolCalls: { spoolDir: otherSpool, onError: (err) => errors.push(err.message) },
    });
    try {
      await next.toolCalls.flush();
      assert.equal(existsSync(join(otherSpool, SPOOL_FILE)), false);
      assert.ok((await toolCalls()).some((r) => r.details!.executionId === keptId), 'delivered by the next process');
    } finally {
      await next.close();
    }
  });

  it("'local' mode: each record goes to onRecord and nothing to the authorization server", async () => {
    const local: ToolCallRecord[] = [];
    const before = (await toolCalls()).length;
    const verifier = createVerifier({
      issuer: as!.issuer,
      resource: notes.url,
      revocation: false,
      resourceServer: { clientId: 'notes-server', clientSecret: SECRET },
      toolCalls: { report: 'local', onRecord: (r) => local.push(r) },
    });
    try {
      const request = new Request(notes.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'x', method: 'tools/call', params: { name: 'read_note', arguments: { id: 'n' } } }),
      });
      const auth = await authenticateRequest(verifier, request);
      assert.ok(!(auth instanceof Response));
      auth.report(new Response(JSON.stringify({ jsonrpc: '2.0', id: 'x', result: { content: [], isError: true } })));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await verifier.toolCalls.flush();
      assert.equal(local.length, 1);
      assert.equal(local[0]!.outcome, 'error');
      assert.equal(local[0]!.subject, aliceId);
      assert.equal(local[0]!.tool, 'read_note');
      assert.equal((await toolCalls()).length, before, 'nothing was sent');
    } finally {
      await verifier.close();
    }
  });

  it('audit search --subject tells the person’s story (consent, token, tool calls) and --tool picks one tool; the chains verify', async () => {
    await as!.server.audit.flush();
    const story = await runCli(['audit', 'search', '--subject', 'alice'], { dataDir });
    assert.equal(story.code, 0, story.stderr);
    const events = story.stdout.trim().split('\n').map((l) => (JSON.parse(l) as AuditRecord).event);
    for (const event of ['login.succeeded', 'consent.granted', 'token.issued', 'tool.called']) assert.ok(events.includes(event), `${event} in ${events.join(', ')}`);

    const reads = await runCli(['audit', 'search', '--subject', aliceId, '--tool', 'read_note'], { dataDir });
    assert.equal(reads.code, 0, reads.stderr);
    const picked = reads.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    assert.deepEqual(
      picked.map((r) => [r.event, r.details!.tool, r.outcome]),
      [['tool.called', 'read_note', 'failure']],
    );

    await as!.stop();
    as = undefined;
    const verified = await runCli(['audit', 'verify'], { dataDir });
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /^ok: /);
  });
});
