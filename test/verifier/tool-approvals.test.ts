/**
 * Tools a person approves call by call (issue #15), the verifier's side, against the stand-in
 * authorization server's `/tool-approvals` (test/verifier/support.ts `FakeApprovals`):
 * Express → nodeMiddleware({ toolApprovals }) → the SDK's McpServer, whose tool counts its runs
 * and keeps the approval it saw. A pending approval is answered as a URL elicitation the SDK
 * parses, or as a structured denial; approved → the tool runs with `auth.extra.approval`; an
 * approval token that does not bind exactly this call, or is replayed, is refused; the AS down
 * → 503 and the tool never runs; sensitive values never reach the AS; batches are refused.
 * Koa and fetch adapters share the guard (one pass each).
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import { z } from 'zod';
import { generateKeyPair } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ElicitRequestURLParamsSchema, McpError, UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';
import {
  APPROVAL_ID_META,
  DENIAL_META,
  authenticateRequest,
  createVerifier,
  koaMiddleware,
  nodeMiddleware,
  type AdapterOptions,
  type ApprovalDenial,
  type AuthInfo,
  type ToolApprovals,
  type Verifier,
} from '../../src/verifier/index.js';
import { argumentsDigest } from '../../src/verifier/tool-arguments.js';
import { now, startFakeAs, NOTES, type FakeAs } from './support.js';

const PIN = 'pin-4711-secret';

const APPROVALS: ToolApprovals = {
  send_money: {
    // quotes the sensitive pin on purpose: it must never reach the AS
    summary: (args) => `Send ${String(args.amount)} EUR to ${String(args.iban)} (pin ${String(args.pin)})`,
    sensitive: ['pin'],
  },
  broken: {
    summary: () => {
      throw new Error('no summary today');
    },
  },
};

const rpc = (method: string, params: Record<string, unknown>, id: string | number = 1) => ({ jsonrpc: '2.0', id, method, params });
const send = (args: Record<string, unknown> = { iban: 'DE02100100109307118603', amount: 20, pin: PIN }, meta?: Record<string, unknown>, id: string | number = 1) =>
  rpc('tools/call', { name: 'send_money', arguments: args, ...(meta ? { _meta: meta } : {}) }, id);
const withElicitation = { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { url: {} } } };

let as: FakeAs;
let verifier: Verifier;
let token: string;
const errors: Error[] = [];

/**
 * One of the errors reported since `index` says `pattern`. Not simply the last: the tool call
 * reporter runs in the background and may report (say, a report the test AS refused) meanwhile.
 */
function assertReportedSince(index: number, pattern: RegExp): void {
  const since = errors.slice(index).map((e) => e.message);
  assert.ok(since.some((m) => pattern.test(m)), `no error matching ${pattern} among ${JSON.stringify(since)}`);
}
const servers: Server[] = [];
/** the approvals the tool saw, one per run */
const runs: unknown[] = [];

async function listen(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An Express app with the SDK's McpServer behind nodeMiddleware(options). */
async function mcpApp(v: Verifier, options: AdapterOptions): Promise<string> {
  const app = express();
  app.post('/mcp', nodeMiddleware(v, options), async (req, res) => {
    const server = new McpServer({ name: 'bank', version: '1.0.0' });
    server.registerTool('send_money', { description: 'send money', inputSchema: { iban: z.string(), amount: z.number(), pin: z.string().optional() } }, async (_args, extra) => {
      runs.push(extra.authInfo?.extra?.approval);
      return { content: [{ type: 'text' as const, text: 'sent' }] };
    });
    server.registerTool('broken', { description: 'has no summary' }, async () => {
      runs.push('broken');
      return { content: [{ type: 'text' as const, text: 'ran' }] };
    });
    server.registerTool('list_notes', { description: 'no approval needed' }, async () => ({ content: [{ type: 'text' as const, text: 'notes' }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void transport.close().then(() => server.close()));
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  return listen(app);
}

const post = async (url: string, body: unknown, bearer = token) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${bearer}` },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : undefined) as Record<string, any>, headers: res.headers };
};

let base: string;
let elicitBase: string;
let denialBase: string;

before(async () => {
  as = await startFakeAs();
  verifier = createVerifier({
    issuer: as.issuer,
    resource: NOTES,
    resourceServer: { clientId: 'notes-mcp', clientSecret: 'rs-secret' },
    revocation: { onError: (e) => errors.push(e) },
  });
  token = await as.sign({ grant_id: 'grant-1', scope: 'notes:read notes:write' });
  base = await mcpApp(verifier, { toolApprovals: APPROVALS });
  elicitBase = await mcpApp(verifier, { toolApprovals: APPROVALS, approvalAnswer: 'elicitation' });
  denialBase = await mcpApp(verifier, { toolApprovals: APPROVALS, approvalAnswer: 'denial' });
});

after(async () => {
  await verifier.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await as.stop();
});

beforeEach(() => {
  as.approvals.override = undefined;
  as.approvals.tweaks = undefined;
});

/** The denial `_meta` of a tool-result answer. */
const denialOf = (answer: { json: Record<string, any> }) => answer.json.result?._meta?.[DENIAL_META] as ApprovalDenial | undefined;

/** Calls with fresh arguments until pending, approves, and returns the approval id and the arguments. */
async function pendingThenApproved(args: Record<string, unknown>, by: 'person' | 'policy' = 'person'): Promise<string> {
  const first = await post(`${base}/mcp`, send(args));
  const id = denialOf(first)!.approval_id!;
  as.approvals.approve(id, by);
  return id;
}

let amount = 100;
const freshArgs = () => ({ iban: 'DE02100100109307118603', amount: amount++, pin: PIN });

describe('a call of a declared tool waits for a person', () => {
  it("pending, 'auto' without per-request capabilities → a tool result with isError and a structured denial; the tool does not run", async () => {
    const before = runs.length;
    const answer = await post(`${base}/mcp`, send(freshArgs(), undefined, 'call-7'));
    assert.equal(answer.status, 200);
    assert.equal(answer.json.id, 'call-7');
    assert.equal(answer.json.result.isError, true);
    const denial = denialOf(answer)!;
    assert.equal(denial.classification, 'approval_required');
    assert.equal(denial.status, 'pending');
    assert.match(denial.approval_url!, new RegExp(`^${as.issuer}/approvals/`));
    assert.equal(denial.account_url, `${as.issuer}/account/apps`);
    assert.equal(denial.expires_in, 300);
    assert.equal(denial.interval, 5);
    assert.deepEqual(denial.retry, { meta_key: APPROVAL_ID_META, value: denial.approval_id });
    const text = answer.json.result.content[0].text as string;
    for (const part of [denial.approval_url!, denial.account_url!, APPROVAL_ID_META, denial.approval_id!, 'send_money']) assert.ok(text.includes(part), `text names ${part}`);
    assert.ok(!text.includes(PIN));
    assert.equal(runs.length, before);
  });

  it("pending, 'auto' with elicitation.url in params._meta client capabilities → -32042 the SDK parses as UrlElicitationRequiredError", async () => {
    const answer = await post(`${base}/mcp`, send(freshArgs(), withElicitation, 9));
    assert.equal(answer.status, 200);
    assert.equal(answer.json.id, 9);
    const { code, message, data } = answer.json.error;
    assert.equal(code, -32042);
    const parsed = McpError.fromError(code, message, data);
    assert.ok(parsed instanceof UrlElicitationRequiredError);
    assert.equal(parsed.elicitations.length, 1);
    const elicitation = parsed.elicitations[0]!;
    ElicitRequestURLParamsSchema.parse(elicitation);
    assert.equal(elicitation.mode, 'url');
    assert.match(elicitation.url, new RegExp(`^${as.issuer}/approvals/${elicitation.elicitationId}$`));
    assert.match(elicitation.message, /^Approve in your browser: Send \d+ EUR to DE02100100109307118603/);
    assert.ok(!JSON.stringify(answer.json).includes(PIN));
  });

  it("approvalAnswer 'elicitation' elicits without declared capabilities; 'denial' denies with them", async () => {
    const elicited = await post(`${elicitBase}/mcp`, send(freshArgs()));
    assert.equal(elicited.json.error.code, -32042);
    const denied = await post(`${denialBase}/mcp`, send(freshArgs(), withElicitation));
    assert.equal(denialOf(denied)?.classification, 'approval_required');
  });

  it('a retry with the context id in params._meta is sent to the AS and answered from the same record; once approved the tool runs with auth.extra.approval', async () => {
    const args = freshArgs();
    const first = await post(`${base}/mcp`, send(args));
    const id = denialOf(first)!.approval_id!;
    const again = await post(`${base}/mcp`, send(args, { [APPROVAL_ID_META]: id }));
    assert.equal(as.approvals.requests.at(-1)!.body.approval_id, id);
    assert.equal(denialOf(again)!.approval_id, id, 'no duplicate request');
    // a context id that is not a string of at most 200 characters is not sent on
    await post(`${base}/mcp`, send(args, { [APPROVAL_ID_META]: 'x'.repeat(201) }));
    assert.equal(as.approvals.requests.at(-1)!.body.approval_id, undefined);

    as.approvals.approve(id);
    const before = runs.length;
    const approved = await post(`${base}/mcp`, send(args, { [APPROVAL_ID_META]: id }));
    assert.equal(approved.status, 200, JSON.stringify(approved.json));
    assert.equal(approved.json.result.content[0].text, 'sent');
    assert.equal(runs.length, before + 1);
    assert.deepEqual(runs.at(-1), { id, approvedBy: 'person' });
    // redeemed: the next identical call asks again
    const next = await post(`${base}/mcp`, send(args));
    assert.equal(denialOf(next)!.status, 'pending');
    assert.notEqual(denialOf(next)!.approval_id, id);
  });

  it('approved by policy → approvedBy policy', async () => {
    const args = freshArgs();
    await pendingThenApproved(args, 'policy');
    await post(`${base}/mcp`, send(args));
    assert.equal((runs.at(-1) as { approvedBy: string }).approvedBy, 'policy');
  });

  it('refused / expired / unavailable → a tool result with isError and the classification, in elicitation mode too', async () => {
    for (const target of [base, elicitBase]) {
      const refusedArgs = freshArgs();
      const refusedId = denialOf(await post(`${denialBase}/mcp`, send(refusedArgs)))!.approval_id!;
      as.approvals.refuse(refusedId);
      const refused = await post(`${target}/mcp`, send(refusedArgs));
      assert.deepEqual(denialOf(refused), { classification: 'approval_denied', status: 'denied', approval_id: refusedId });
      assert.equal(refused.json.result.isError, true);

      const expiredArgs = freshArgs();
      const expiredId = denialOf(await post(`${denialBase}/mcp`, send(expiredArgs)))!.approval_id!;
      as.approvals.expire(expiredId);
      const expired = await post(`${target}/mcp`, send(expiredArgs));
      assert.deepEqual(denialOf(expired), { classification: 'approval_expired', status: 'expired', approval_id: expiredId });

      // a client-credentials token: no person
      const machine = await as.sign({ sub: 'test-client', scope: 'notes:read' });
      const unavailable = await post(`${target}/mcp`, send(freshArgs()), machine);
      assert.equal(denialOf(unavailable)?.classification, 'approval_unavailable');
      assert.match(unavailable.json.result.content[0].text, /no person can give it/);
    }
  });

  it('tools without a declaration and other methods are not asked about', async () => {
    const count = as.approvals.requests.length;
    const answer = await post(`${base}/mcp`, rpc('tools/call', { name: 'list_notes', arguments: {} }));
    assert.equal(answer.json.result.content[0].text, 'notes');
    assert.equal(as.approvals.requests.length, count);
  });
});

describe('the approval token binds exactly this call', () => {
  const refusedWith = async (tweak: (args: Record<string, unknown>) => Promise<void> | void) => {
    const args = freshArgs();
    await pendingThenApproved(args);
    await tweak(args);
    const before = runs.length;
    const errorsBefore = errors.length;
    const answer = await post(`${base}/mcp`, send(args, undefined, 'x'));
    as.approvals.tweaks = undefined;
    assert.equal(runs.length, before, 'the tool did not run');
    assert.equal(answer.json.id, 'x');
    assert.equal(answer.json.error?.code, -32603, JSON.stringify(answer.json));
    assert.ok(errors.length > errorsBefore, 'reported');
    return errors.at(-1)!.message;
  };
  const details = (change: Record<string, unknown>) => async (args: Record<string, unknown>) => {
    as.approvals.tweaks = {
      claims: { authorization_details: [{ type: 'mcp_tool_call', locations: [NOTES], tool: 'send_money', arguments_digest: await argumentsDigest(args), summary: 's', ...change }] },
    };
  };

  it('another tool', async () => assert.match(await refusedWith(details({ tool: 'broken' })), /another tool/));
  it('another digest (a different argument)', async () =>
    assert.match(await refusedWith(async (args) => details({ arguments_digest: await argumentsDigest({ ...args, amount: 999_999 }) })(args)), /other arguments/));
  it('another authorization_details type', async () => assert.match(await refusedWith(details({ type: 'payment_initiation' })), /authorization_details/));
  it('another grant, and no grant', async () => {
    assert.match(await refusedWith(() => void (as.approvals.tweaks = { claims: { grant_id: 'grant-2' } })), /grant_id/);
    assert.match(await refusedWith(() => void (as.approvals.tweaks = { claims: { grant_id: undefined } })), /grant_id/);
  });
  it('another client', async () => assert.match(await refusedWith(() => void (as.approvals.tweaks = { claims: { client_id: 'other-client' } })), /client_id/));
  it('another subject', async () => assert.match(await refusedWith(() => void (as.approvals.tweaks = { claims: { sub: 'user-2' } })), /sub/));
  it('another audience', async () => assert.match(await refusedWith(() => void (as.approvals.tweaks = { claims: { aud: 'https://other.example.com/mcp' } })), /aud/));
  it('expired', async () => assert.match(await refusedWith(() => void (as.approvals.tweaks = { claims: { iat: now() - 300, exp: now() - 60 } })), /ERR_JWT_EXPIRED/));
  it('wrong typ (an access token)', async () => assert.match(await refusedWith(() => void (as.approvals.tweaks = { header: { typ: 'at+jwt' } })), /typ/));
  it('another issuer', async () => assert.match(await refusedWith(() => void (as.approvals.tweaks = { claims: { iss: 'https://evil.example.com' } })), /iss/));
  it('bad signature (a key not in the JWKS, same kid)', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    assert.match(await refusedWith(() => void (as.approvals.tweaks = { key: privateKey })), /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
  });
  it('a jti that is not the approval id', async () => assert.match(await refusedWith(() => void (as.approvals.tweaks = { claims: { jti: 'approval-other' } })), /jti/));

  it('replayed: the same approval answer a second time is refused', async () => {
    const args = freshArgs();
    await pendingThenApproved(args);
    const ok = await post(`${base}/mcp`, send(args));
    assert.equal(ok.json.result?.content?.[0]?.text, 'sent');
    const replay = as.approvals.approvedAnswers.at(-1)!;
    as.approvals.override = () => ({ status: 200, body: replay });
    const before = runs.length;
    const again = await post(`${base}/mcp`, send(args));
    assert.equal(again.json.error?.code, -32603);
    assert.equal(runs.length, before);
    assert.match(errors.at(-1)!.message, /replay/);
  });
});

describe('when the authorization server cannot approve', () => {
  it('AS answers 5xx or nonsense → 503 JSON-RPC -32000, the tool never runs', async () => {
    for (const reply of [{ status: 503, body: { error: 'temporarily_unavailable' } }, { status: 200, body: { status: 'maybe' } }, { status: 200, body: { status: 'pending' } }]) {
      as.approvals.override = () => reply;
      const before = runs.length;
      const answer = await post(`${base}/mcp`, send(freshArgs(), undefined, 3));
      assert.equal(answer.status, 503);
      assert.equal(answer.headers.get('retry-after'), '5');
      assert.deepEqual(answer.json, { jsonrpc: '2.0', id: 3, error: { code: -32000, message: 'cannot reach the authorization server to approve this call' } });
      assert.equal(runs.length, before);
    }
  });

  it('AS unreachable → 503', async () => {
    const down = createVerifier({
      issuer: as.issuer,
      resource: NOTES,
      resourceServer: { clientId: 'notes-mcp', clientSecret: 'rs-secret' },
      toolApprovalsEndpoint: 'http://127.0.0.1:9/tool-approvals',
      revocation: { onError: (e) => errors.push(e) },
    });
    try {
      const url = await mcpApp(down, { toolApprovals: APPROVALS });
      const before = runs.length;
      const answer = await post(`${url}/mcp`, send(freshArgs()));
      assert.equal(answer.status, 503);
      assert.equal(answer.json.error.code, -32000);
      assert.equal(runs.length, before);
    } finally {
      await down.close();
    }
  });

  it('wrong resourceServer credentials (401 from the AS) → 503 and a loud error', async () => {
    const wrong = createVerifier({
      issuer: as.issuer,
      resource: NOTES,
      resourceServer: { clientId: 'notes-mcp', clientSecret: 'not-the-secret' },
      revocation: { onError: (e) => errors.push(e) },
    });
    try {
      const url = await mcpApp(wrong, { toolApprovals: APPROVALS });
      const reportedBefore = errors.length;
      const answer = await post(`${url}/mcp`, send(freshArgs()));
      assert.equal(answer.status, 503);
      assertReportedSince(reportedBefore, /tool approvals are broken: .*resourceServer\.clientId \/ clientSecret/);
    } finally {
      await wrong.close();
    }
  });

  it('the AS says the access token is inactive → 401 invalid_token', async () => {
    as.approvals.override = () => ({ status: 400, body: { error: 'invalid_token' } });
    const answer = await post(`${base}/mcp`, send(freshArgs()));
    assert.equal(answer.status, 401);
    assert.match(answer.headers.get('www-authenticate')!, /error="invalid_token"/);
  });
});

describe('what the verifier sends and refuses', () => {
  it('sent with HTTP Basic: the access token, tool, digest and a summary without sensitive values (even quoted)', async () => {
    const args = freshArgs();
    await post(`${base}/mcp`, send(args));
    const { authorization, body } = as.approvals.requests.at(-1)!;
    assert.equal(authorization, `Basic ${Buffer.from('notes-mcp:rs-secret').toString('base64')}`);
    assert.equal(body.token, token);
    assert.equal(body.tool, 'send_money');
    assert.equal(body.arguments_digest, await argumentsDigest(args));
    assert.equal(body.summary, `Send ${args.amount} EUR to DE02100100109307118603 (pin [redacted])`);
    assert.ok(!JSON.stringify(as.approvals.requests).includes(PIN), 'the pin never reached the AS');
  });

  it('a long summary is cut to 300 characters', async () => {
    const long = createVerifier({ issuer: as.issuer, resource: NOTES, resourceServer: { clientId: 'notes-mcp', clientSecret: 'rs-secret' }, revocation: { onError: () => {} } });
    try {
      const url = await mcpApp(long, { toolApprovals: { send_money: { summary: () => 'x'.repeat(1000) } } });
      await post(`${url}/mcp`, send(freshArgs()));
      assert.equal((as.approvals.requests.at(-1)!.body.summary as string).length, 300);
    } finally {
      await long.close();
    }
  });

  it('a batch with a call that needs approval → -32600, nothing runs, the AS is not asked', async () => {
    const count = as.approvals.requests.length;
    const before = runs.length;
    const answer = await post(`${base}/mcp`, [rpc('tools/call', { name: 'list_notes', arguments: {} }, 1), send(freshArgs(), undefined, 2)]);
    assert.equal(answer.status, 400);
    assert.deepEqual(answer.json, { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'tools that need approval cannot be called in a batch' } });
    assert.equal(runs.length, before);
    assert.equal(as.approvals.requests.length, count);
  });

  it('a summary that throws → -32603, the tool does not run, reported', async () => {
    const before = runs.length;
    const reportedBefore = errors.length;
    const answer = await post(`${base}/mcp`, rpc('tools/call', { name: 'broken', arguments: {} }, 5));
    assert.equal(answer.json.id, 5);
    assert.equal(answer.json.error.code, -32603);
    assert.equal(runs.length, before);
    assertReportedSince(reportedBefore, /toolApprovals\["broken"\]\.summary failed: no summary today/);
  });

  it('adapter creation refuses toolApprovals without resourceServer, and with scopesFrom headers', () => {
    const plain = createVerifier({ issuer: as.issuer, resource: NOTES, revocation: false });
    assert.throws(() => nodeMiddleware(plain, { toolApprovals: APPROVALS }), /resourceServer: \{ clientId, clientSecret \}/);
    assert.throws(() => koaMiddleware(plain, { toolApprovals: APPROVALS }), /resourceServer/);
    assert.throws(() => nodeMiddleware(verifier, { toolApprovals: APPROVALS, scopesFrom: 'headers' }), /scopesFrom: 'headers'/);
    assert.throws(() => nodeMiddleware(verifier, { toolApprovals: { x: {} as never } }), /summary must be a function/);
    assert.throws(() => createVerifier({ issuer: as.issuer, resource: NOTES, revocation: false, resourceServer: { clientId: 'a', clientSecret: '' } }), /resourceServer.clientSecret/);
  });
});

describe('endpoint discovery', () => {
  it("the metadata's tool_approvals_endpoint is preferred over ${issuer}/tool-approvals", async () => {
    const other = await startFakeAs();
    other.metadata.tool_approvals_endpoint = `${other.issuer}/custom/tool-approvals`;
    const v = createVerifier({ issuer: other.issuer, resource: NOTES, resourceServer: { clientId: 'notes-mcp', clientSecret: 'rs-secret' }, revocation: { onError: () => {} } });
    try {
      const url = await mcpApp(v, { toolApprovals: APPROVALS });
      const answer = await post(`${url}/mcp`, send(freshArgs()), await other.sign({ grant_id: 'g' }));
      assert.equal(denialOf(answer)?.status, 'pending');
      assert.equal(other.hits.get('/custom/tool-approvals'), 1);
      assert.equal(other.hits.get('/tool-approvals'), undefined);
    } finally {
      await v.close();
      await other.stop();
    }
  });
});

describe('koa and fetch adapters share the guard', () => {
  it('koa: pending → denial; approved → ctx.state.auth.extra.approval', async () => {
    const app = new Koa();
    app.use(koaMiddleware(verifier, { toolApprovals: APPROVALS }));
    app.use((ctx) => {
      ctx.body = { approval: (ctx.state.auth as AuthInfo).extra?.approval, sameOnReq: (ctx.req as { auth?: AuthInfo }).auth === ctx.state.auth };
    });
    const url = await listen(app.callback());
    const args = freshArgs();
    const pending = await post(url, send(args));
    const id = denialOf(pending)!.approval_id!;
    as.approvals.approve(id);
    const approved = await post(url, send(args));
    assert.deepEqual(approved.json, { approval: { id, approvedBy: 'person' }, sameOnReq: true });
  });

  it('fetch: pending → elicitation (auto); approved → the AuthInfo with extra.approval', async () => {
    const options: AdapterOptions = { toolApprovals: APPROVALS };
    const call = (body: unknown) =>
      authenticateRequest(
        verifier,
        new Request('https://notes.example.com/mcp', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
        options,
      );
    const args = freshArgs();
    const pending = await call(send(args, withElicitation));
    assert.ok(pending instanceof Response);
    const error = ((await pending.json()) as { error: { code: number; data: { elicitations: { elicitationId: string }[] } } }).error;
    assert.equal(error.code, -32042);
    as.approvals.approve(error.data.elicitations[0]!.elicitationId);
    const auth = await call(send(args));
    assert.ok(!(auth instanceof Response));
    assert.deepEqual(auth.extra?.approval, { id: error.data.elicitations[0]!.elicitationId, approvedBy: 'person' });
  });
});
