/**
 * `POST /tool-approvals` on a real server, on SQLite and on Redis: the MCP server's client
 * authentication, the request and token checks, and the life of an approval — pending, the
 * person's decision (through the service the approval page calls), the approval token (checked
 * with jose against the server's JWKS), single use, refusal, expiry, and the policies — with
 * the audit records it leaves, which hold no token.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { CALENDAR, fixtureConfig, NOTES, SECRET } from '../helpers/fixtures.js';
import { serviceToken, userTokens } from '../helpers/flows.js';
import type { TestServer } from '../helpers/server.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { argumentsDigest } from '../../src/verifier/tool-arguments.js';
import { enrolTotp } from '../second-factors/support.js';

/** seconds a request waits for the person: short, for the expiry test */
const REQUEST_TTL = 3;

function config(): Partial<ConfigInput> {
  const base = fixtureConfig();
  const [notes, ...others] = base.resources!;
  return {
    ...base,
    resources: [
      {
        ...notes!,
        scopes: {
          'notes:read': { description: 'Read your notes', tools: ['read_note', 'ping'] },
          'notes:write': { description: 'Create and edit notes', tools: ['create_note', 'rename_note'] },
          'notes:delete': { description: 'Delete notes', dangerous: true, tools: ['delete_note'] },
        },
      },
      ...others,
    ],
    toolApprovals: {
      requestTtl: REQUEST_TTL,
      tokenTtl: 30,
      pollInterval: 2,
      policies: [
        { tool: 'ping', ask: 'never' },
        { resource: NOTES, tool: 'rename_note', ask: 'once_per_session', secondFactor: 'off' },
        { tool: 'wipe_notes', ask: 'always', secondFactor: 'always' },
      ],
    },
  };
}

const basic = (id: string, secret = SECRET) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

interface Ask {
  token: string;
  tool?: string;
  arguments_digest?: string;
  summary?: string;
  approval_id?: string;
}

type Answer = Record<string, unknown> & { status?: string; approval_id?: string; approval_token?: string; error?: string };

async function post(t: TestServer, body: unknown, options: { auth?: string | null; raw?: string; contentType?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': options.contentType ?? 'application/json' };
  const auth = options.auth === undefined ? basic('notes-server') : options.auth;
  if (auth !== null) headers.authorization = auth;
  const res = await fetch(t.url('/tool-approvals'), { method: 'POST', headers, body: options.raw ?? JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: (await res.json().catch(() => ({}))) as Answer };
}

/** The AS answer for one call: tool and arguments as given, summary made up. */
async function ask(t: TestServer, q: Ask & { args?: Record<string, unknown> }) {
  const { args, ...rest } = q;
  return post(t, {
    tool: 'delete_note',
    summary: 'Delete a note',
    arguments_digest: await argumentsDigest(args ?? { id: 1 }),
    ...rest,
  });
}

function auditRecords(t: TestServer): { records: { event: string; actor?: string; client?: string; resource?: string; details?: Record<string, unknown> }[]; text: string } {
  const dir = join(t.dataDir, 'audit');
  const text = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
  return { records: text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)), text };
}

for (const kind of STORE_KINDS) {
  describe(`POST /tool-approvals (${kind})`, () => {
    const s = serverFixture(kind, { config: config() });
    let person = '';
    let aliceId = '';
    const handed: string[] = [];

    before(async () => {
      person = (await userTokens(s.t, 'web-app', 'notes:read notes:write')).tokens.access_token;
      handed.push(person);
      aliceId = (await s.t.server.store.accounts.findByUsername('alice'))!.id;
    });

    it('401 invalid_client without credentials, with a wrong secret, for an unknown client or one that acts for no MCP server', async () => {
      for (const auth of [null, basic('notes-server', 'wrong-secret-wrong-secret'), basic('nobody'), basic('confidential-web'), 'Bearer abc']) {
        const res = await post(s.t, { token: person, tool: 'delete_note', summary: 'Delete', arguments_digest: await argumentsDigest({}) }, { auth });
        assert.equal(res.status, 401, String(auth));
        assert.equal(res.body.error, 'invalid_client');
        assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/);
      }
    });

    it('405 with Allow: POST for GET and OPTIONS', async () => {
      for (const method of ['GET', 'OPTIONS']) {
        const res = await fetch(s.t.url('/tool-approvals'), { method, headers: { authorization: basic('notes-server') } });
        assert.equal(res.status, 405, method);
        assert.equal(res.headers.get('allow'), 'POST');
      }
    });

    it('400 invalid_request for a body that is not JSON or not the shape; 413 when over 16 KiB', async () => {
      const digest = await argumentsDigest({});
      const good = { token: person, tool: 'delete_note', summary: 'Delete', arguments_digest: digest };
      const bad: unknown[] = [
        { ...good, arguments_digest: 'sha-256:short' },
        { ...good, arguments_digest: 'md5:0123456789012345678901234567890123456789012' },
        { ...good, tool: '' },
        { ...good, tool: 'x'.repeat(101) },
        { ...good, summary: 'x'.repeat(301) },
        { ...good, approval_id: 'x'.repeat(201) },
        { ...good, extra: true },
        { tool: 'delete_note', summary: 'Delete', arguments_digest: digest },
        [good],
      ];
      for (const body of bad) {
        const res = await post(s.t, body);
        assert.equal(res.status, 400, JSON.stringify(body).slice(0, 100));
        assert.equal(res.body.error, 'invalid_request');
        assert.ok(!JSON.stringify(res.body).includes(person), 'the answer never echoes the token');
      }
      const notJson = await post(s.t, undefined, { raw: '{"token": ' });
      assert.equal(notJson.status, 400);
      assert.equal(notJson.body.error, 'invalid_request');
      const form = await post(s.t, undefined, { raw: 'token=x', contentType: 'application/x-www-form-urlencoded' });
      assert.equal(form.status, 400);
      const large = await post(s.t, { ...good, summary: 'x'.repeat(17 * 1024) });
      assert.equal(large.status, 413);
      assert.equal(large.body.error, 'invalid_request');
    });

    it('400 invalid_token for a token that is not ours; 403 unauthorized_client for a token of another MCP server', async () => {
      const notOurs = await ask(s.t, { token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' });
      assert.equal(notOurs.status, 400);
      assert.equal(notOurs.body.error, 'invalid_token');
      const [header, payload] = person.split('.');
      const forged = await ask(s.t, { token: `${header}.${payload}.${Buffer.from('forged').toString('base64url')}` });
      assert.equal(forged.body.error, 'invalid_token');

      const calendar = (await userTokens(s.t, 'web-app', 'calendar:read', CALENDAR)).tokens.access_token;
      handed.push(calendar);
      const other = await ask(s.t, { token: calendar });
      assert.equal(other.status, 403);
      assert.equal(other.body.error, 'unauthorized_client');
    });

    it('pending, the same request on a retry, approved by the person, then an approval token once; the next call asks again', async () => {
      const args = { id: 'groceries' };
      const first = await ask(s.t, { token: person, args, summary: 'Delete the note "groceries"' });
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('cache-control'), 'no-store');
      assert.equal(first.body.status, 'pending');
      const id = first.body.approval_id!;
      assert.equal(first.body.approval_url, s.t.url(`/approvals/${id}`));
      assert.equal(first.body.account_url, s.t.url('/account/apps'));
      assert.equal(first.body.interval, 2);
      assert.ok(typeof first.body.expires_in === 'number' && first.body.expires_in >= 1 && first.body.expires_in <= REQUEST_TTL);

      const again = await ask(s.t, { token: person, args });
      assert.equal(again.body.status, 'pending');
      assert.equal(again.body.approval_id, id, 'a retry finds the same request');
      const withId = await ask(s.t, { token: person, args, approval_id: id });
      assert.equal(withId.body.approval_id, id);

      const pendingList = await s.t.server.toolApprovals.pendingFor(aliceId);
      assert.ok(pendingList.some((r) => r.id === id && r.summary === 'Delete the note "groceries"'));
      assert.equal(await s.t.server.toolApprovals.decide(id, 'someone-else', 'approved', false), 'unknown', 'only the person it was asked of decides');
      assert.equal(await s.t.server.toolApprovals.decide(id, aliceId, 'approved', true), 'decided');
      assert.equal(await s.t.server.toolApprovals.decide(id, aliceId, 'denied', false), 'not_pending', 'once');

      const approved = await ask(s.t, { token: person, args, approval_id: id });
      assert.equal(approved.body.status, 'approved');
      assert.equal(approved.body.approval_id, id);
      assert.equal(approved.body.expires_in, 30);
      const token = approved.body.approval_token!;
      handed.push(token);

      const jwks = createRemoteJWKSet(new URL(s.t.url('/jwks')));
      const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: s.t.issuer, audience: NOTES, typ: 'mcp-approval+jwt', algorithms: ['ES256'] });
      assert.equal(protectedHeader.typ, 'mcp-approval+jwt');
      assert.equal(typeof protectedHeader.kid, 'string');
      assert.equal(protectedHeader.kid, decodeProtectedHeader(person).kid, 'signed with the access-token key');
      const access = JSON.parse(Buffer.from(person.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      assert.equal(payload.sub, aliceId);
      assert.equal(payload.client_id, 'web-app');
      assert.equal(payload.grant_id, access.grant_id);
      assert.equal(payload.jti, id);
      assert.equal(payload.approved_by, 'person');
      assert.equal(payload.exp! - payload.iat!, 30);
      assert.deepEqual(payload.authorization_details, [
        { type: 'mcp_tool_call', locations: [NOTES], tool: 'delete_note', arguments_digest: await argumentsDigest(args), summary: 'Delete the note "groceries"' },
      ]);

      const next = await ask(s.t, { token: person, args, approval_id: id });
      assert.equal(next.body.status, 'pending', 'an approval is used once: the same call again needs a new one');
      assert.notEqual(next.body.approval_id, id);
      await s.t.server.toolApprovals.decide(next.body.approval_id!, aliceId, 'denied', false);
    });

    it('concurrent calls after an approval: exactly one gets the approval token', async () => {
      const args = { id: 'race' };
      const first = await ask(s.t, { token: person, args });
      await s.t.server.toolApprovals.decide(first.body.approval_id!, aliceId, 'approved', false);
      const answers = await Promise.all(Array.from({ length: 6 }, () => ask(s.t, { token: person, args })));
      assert.equal(answers.filter((a) => a.body.status === 'approved').length, 1, answers.map((a) => a.body.status).join(','));
      for (const a of answers) assert.equal(a.status, 200);
    });

    it('a fresh second factor is needed to approve: always by policy, and by default for a person who has one; never to refuse', async () => {
      const wipe = await ask(s.t, { token: person, tool: 'wipe_notes', args: {} });
      assert.equal(await s.t.server.toolApprovals.decide(wipe.body.approval_id!, aliceId, 'approved', false), 'second_factor_required');
      assert.equal(await s.t.server.toolApprovals.decide(wipe.body.approval_id!, aliceId, 'approved', true), 'decided');

      await enrolTotp(s.t, 'alice');
      try {
        const enrolled = await ask(s.t, { token: person, args: { id: 'factor' } });
        assert.equal(await s.t.server.toolApprovals.decide(enrolled.body.approval_id!, aliceId, 'approved', false), 'second_factor_required');
        assert.equal(await s.t.server.toolApprovals.decide(enrolled.body.approval_id!, aliceId, 'denied', false), 'decided');
        const policy = await s.t.server.toolApprovals.policyFor((await s.t.server.store.toolApprovals.get(enrolled.body.approval_id!))!);
        assert.deepEqual(policy, { ask: 'always', secondFactor: 'if_enrolled' });
      } finally {
        await s.t.server.store.accounts.update('alice', { secondFactors: '' });
      }
    });

    it('refused: "denied" once, then a fresh request', async () => {
      const args = { id: 'refuse-me' };
      const first = await ask(s.t, { token: person, args });
      assert.equal(await s.t.server.toolApprovals.decide(first.body.approval_id!, aliceId, 'denied', false), 'decided');
      const denied = await ask(s.t, { token: person, args });
      assert.deepEqual(denied.body, { status: 'denied', approval_id: first.body.approval_id });
      const fresh = await ask(s.t, { token: person, args });
      assert.equal(fresh.body.status, 'pending');
      assert.notEqual(fresh.body.approval_id, first.body.approval_id);

      // concurrent retries after a refusal: one is told, the others start afresh
      await s.t.server.toolApprovals.decide(fresh.body.approval_id!, aliceId, 'denied', false);
      const answers = await Promise.all(Array.from({ length: 6 }, () => ask(s.t, { token: person, args })));
      assert.equal(answers.filter((a) => a.body.status === 'denied').length, 1, answers.map((a) => a.body.status).join(','));
      assert.ok(answers.every((a) => a.body.status === 'denied' || a.body.status === 'pending'));
    });

    it('nobody decided in time: "expired" once, then a fresh request; too late to approve', async () => {
      const args = { id: 'too-late' };
      const first = await ask(s.t, { token: person, args });
      await sleep(REQUEST_TTL * 1000 + 200);
      assert.equal(await s.t.server.toolApprovals.decide(first.body.approval_id!, aliceId, 'approved', false), 'not_pending');
      const expired = await ask(s.t, { token: person, args, approval_id: first.body.approval_id! });
      assert.deepEqual(expired.body, { status: 'expired', approval_id: first.body.approval_id });
      const fresh = await ask(s.t, { token: person, args });
      assert.equal(fresh.body.status, 'pending');
      assert.notEqual(fresh.body.approval_id, first.body.approval_id);
    });

    it('an approval_id of another tool or other arguments is ignored', async () => {
      const first = await ask(s.t, { token: person, args: { id: 'a' } });
      const id = first.body.approval_id!;
      await s.t.server.toolApprovals.decide(id, aliceId, 'approved', false);
      const otherArgs = await ask(s.t, { token: person, args: { id: 'b' }, approval_id: id });
      assert.equal(otherArgs.body.status, 'pending');
      assert.notEqual(otherArgs.body.approval_id, id);
      const otherTool = await ask(s.t, { token: person, tool: 'create_note', args: { id: 'a' }, approval_id: id });
      assert.equal(otherTool.body.status, 'pending');
      assert.notEqual(otherTool.body.approval_id, id);
      const unknown = await ask(s.t, { token: person, args: { id: 'a' }, approval_id: 'no-such-approval' });
      assert.equal(unknown.body.status, 'approved', 'an unknown id is ignored: the open approval of this call is found');
      assert.equal(unknown.body.approval_id, id);
    });

    it('policy never: approved at once, by policy, every time', async () => {
      for (const n of [1, 2]) {
        const res = await ask(s.t, { token: person, tool: 'ping', args: { n } });
        assert.equal(res.body.status, 'approved');
        const payload = JSON.parse(Buffer.from(res.body.approval_token!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
        assert.equal(payload.approved_by, 'policy');
        handed.push(res.body.approval_token!);
      }
    });

    it('policy once_per_session: after the person approved the tool once, its other calls go ahead; not another tool', async () => {
      const first = await ask(s.t, { token: person, tool: 'rename_note', args: { id: 1, title: 'one' } });
      assert.equal(first.body.status, 'pending');
      await s.t.server.toolApprovals.decide(first.body.approval_id!, aliceId, 'approved', false);
      const redeemed = await ask(s.t, { token: person, tool: 'rename_note', args: { id: 1, title: 'one' } });
      assert.equal(redeemed.body.status, 'approved');
      const other = await ask(s.t, { token: person, tool: 'rename_note', args: { id: 2, title: 'two' } });
      assert.equal(other.body.status, 'approved', 'other arguments of the same tool');
      const payload = JSON.parse(Buffer.from(other.body.approval_token!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      assert.equal(payload.approved_by, 'policy');
      const otherTool = await ask(s.t, { token: person, tool: 'create_note', args: { id: 2 } });
      assert.equal(otherTool.body.status, 'pending', 'another tool still asks');
    });

    it('a token without a person (client credentials): unavailable, unless the policy is never', async () => {
      const machine = await serviceToken(s.t);
      handed.push(machine);
      const res = await ask(s.t, { token: machine });
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'unavailable');
      assert.equal(typeof res.body.error_description, 'string');
      const ping = await ask(s.t, { token: machine, tool: 'ping' });
      assert.equal(ping.body.status, 'approved');
      const payload = JSON.parse(Buffer.from(ping.body.approval_token!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      assert.equal(payload.client_id, 'nightly-report');
      assert.equal(payload.grant_id, undefined);
    });

    it('400 invalid_token for a revoked token', async () => {
      const revoked = (await userTokens(s.t, 'web-app', 'notes:read')).tokens.access_token;
      handed.push(revoked);
      const res = await fetch(s.t.url('/token/revocation'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: 'web-app', token: revoked }),
      });
      assert.equal(res.status, 200);
      const answer = await ask(s.t, { token: revoked });
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'invalid_token');
    });

    it('audit: approval.requested, approval.granted, approval.refused, approval.expired and approval.redeemed, with identifiers only', async () => {
      await s.t.server.audit.flush();
      const { records, text } = auditRecords(s.t);
      const approvals = records.filter((r) => r.event.startsWith('approval.'));
      for (const event of ['approval.requested', 'approval.granted', 'approval.refused', 'approval.expired', 'approval.redeemed']) {
        assert.ok(approvals.some((r) => r.event === event), `${event} recorded`);
      }
      const granted = approvals.filter((r) => r.event === 'approval.granted');
      assert.ok(granted.some((r) => r.details?.by === 'person' && r.actor === aliceId));
      assert.ok(granted.some((r) => r.details?.by === 'policy' && r.actor === 'notes-server'));
      const requested = approvals.find((r) => r.event === 'approval.requested')!;
      assert.equal(requested.actor, 'notes-server');
      assert.equal(requested.client, 'web-app');
      assert.equal(requested.resource, NOTES);
      assert.equal(requested.details?.accountId, aliceId);
      assert.match(String(requested.details?.argumentsDigest), /^sha-256:/);
      assert.equal(typeof requested.details?.grantId, 'string');
      for (const secret of [...handed, SECRET]) assert.ok(!text.includes(secret), 'no token or secret in the audit log');
      assert.ok(!text.includes('groceries'), 'no summary in the audit log');
      const logs = JSON.stringify(s.t.logs);
      for (const secret of handed) assert.ok(!logs.includes(secret), 'no token in the application log');
    });
  });
}

describe('POST /tool-approvals below an issuer path', () => {
  const s = serverFixture('sqlite', { config: config(), issuerPath: '/tenant' });

  it('answers at <issuer>/tool-approvals, with the approval page and account page under the issuer', async () => {
    assert.ok(s.t.issuer.endsWith('/tenant'));
    const person = (await userTokens(s.t, 'web-app', 'notes:read')).tokens.access_token;
    const res = await ask(s.t, { token: person });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'pending');
    assert.equal(res.body.approval_url, `${s.t.issuer}/approvals/${res.body.approval_id}`);
    assert.equal(res.body.account_url, `${s.t.issuer}/account/apps`);
  });
});
