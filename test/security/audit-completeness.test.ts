/**
 * Audit completeness: every flow runs against one real server (SQLite store, file audit sink)
 * and the operator's commands run as the real CLI on the same data directory; afterwards every
 * event type in AUDIT_EVENTS is in `<dataDir>/audit/`, every record is well-formed and names
 * what it should (request, source, actor, client, resource), no record holds a token, code,
 * secret or password handled in the run, and `mcp-authz audit verify` passes — and fails,
 * naming the place, on a copy with one record edited.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { generate } from 'otplib';
import { startServer, type TestServer } from '../helpers/server.js';
import { Browser, authorize, findForm } from '../helpers/browser-driver.js';
import { fixtureConfig, NOTES, PASSWORD, REDIRECT, SECRET } from '../helpers/fixtures.js';
import { approveDevice, authorizationRequest, openAuthorization, pollDevice, startDevice } from '../helpers/flows.js';
import { client } from '../helpers/rp.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { AUDIT_EVENTS } from '../../src/audit/events.js';
import { auditRecordSchema } from '../../src/audit/record.js';
import type { ConfigInput } from '../../src/config/schema.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const JSON_TYPE = { 'content-type': 'application/json' };
const WRONG_PASSWORD = 'wrong-horse-battery-staple-123';
const CAROL_PASSWORD = 'carol-First-Secret-4k9d2';
const CAROL_NEW_PASSWORD = 'carol-Second-Secret-8j3n5';
/** registrations per source before 429: enough for the run's own (one good, one refused) */
const REGISTRATIONS = 4;
/** seconds a rotated refresh token may be presented again before it counts as stolen */
const GRACE = 1;
/** a client id the server must refuse to fetch: a private address */
const PRIVATE_DOCUMENT = 'https://10.0.0.1/clients/app.json';

/**
 * Events that need an upstream identity provider or an MCP server asking for approvals, proven
 * by the test files that run one (each checks its records and that they hold no secret). A test
 * below checks each file still asserts its event.
 */
const COVERED_ELSEWHERE: Record<string, string> = {
  'account.provisioned': 'test/connections/oidc.test.ts',
  'account.deprovisioned': 'test/connections/oidc-disabled.test.ts',
  'connection.disabled': 'test/connections/oidc-disabled.test.ts',
  'approval.requested': 'test/tool-approvals/endpoint.test.ts',
  'approval.granted': 'test/tool-approvals/endpoint.test.ts',
  'approval.refused': 'test/tool-approvals/endpoint.test.ts',
  'approval.expired': 'test/tool-approvals/endpoint.test.ts',
  'approval.redeemed': 'test/tool-approvals/endpoint.test.ts',
  'tool.called': 'test/tool-reports/reports.test.ts',
};

/** Events caused by an HTTP request: they name the request and its source. */
const REQUEST_EVENT = /^(login|consent|token|client)\.|^rate_limit\.hit$/;

type AuditRecord = Record<string, unknown> & { event: string; details?: Record<string, unknown> };

describe('audit completeness', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-audit-complete-'));
  const auditDir = join(dataDir, 'audit');
  const configFile = join(dataDir, 'config.json');
  const serverConfig = {
    audit: { sink: 'file' },
    rateLimits: { registrationPerSource: { max: REGISTRATIONS, window: 3600 } },
    refreshTokens: { reuseGraceWindow: GRACE },
    // the run registers a machine client: an explicit choice of the operator's
    registration: { clientCredentials: { scopes: ['notes:read'] } },
  } satisfies Partial<ConfigInput>;

  let t: TestServer | undefined;
  let aliceId = '';
  /** the device's grant, revoked by the person on the connected-apps page */
  let deviceGrant = '';
  /** a grant the operator revokes with the CLI */
  let opGrant = '';
  const secrets = new Set<string>([PASSWORD, WRONG_PASSWORD, SECRET, CAROL_PASSWORD, CAROL_NEW_PASSWORD]);
  /** every audit record, from every file in the audit directory */
  let records: AuditRecord[] = [];
  let auditText = '';
  /** CLI invocations that did not exit 0, reported by the tests (not thrown from before) */
  const cliFailures: string[] = [];

  const collect = (...values: unknown[]) => {
    for (const value of values) if (typeof value === 'string' && value.length >= 8) secrets.add(value);
  };

  const cli = async (args: string[], stdin?: string): Promise<CliResult> => {
    const result = await runCli(args, { dataDir, configFile, ...(stdin !== undefined ? { stdin } : {}) });
    if (result.code !== 0) cliFailures.push(`mcp-authz ${args.join(' ')} exited ${result.code}: ${result.stderr.trim().slice(0, 300)}`);
    return result;
  };

  /** Records of every file in `dir` (rotated `audit-*.jsonl` and the current `audit.jsonl`). */
  const readRecords = (dir: string) => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
    const text = files.map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    const parsed = text
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as AuditRecord);
    return { files, text, parsed };
  };

  /** A token request answered with JSON; its strings are collected as secrets. */
  const tokenRequest = async (body: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await fetch(t!.url('/token'), { method: 'POST', headers: { ...FORM, ...headers }, body: new URLSearchParams(body) });
    const json = (await res.json()) as Record<string, string>;
    collect(json.access_token, json.refresh_token, json.id_token);
    return { status: res.status, body: json };
  };
  const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

  before(async () => {
    t = await startServer({ store: 'sqlite', dataDir, config: serverConfig as Partial<ConfigInput> });
    // the CLI runs on the server's configuration: same data directory, same audit sink
    writeFileSync(configFile, JSON.stringify({ ...fixtureConfig(), issuer: t.issuer, dataDir, ...serverConfig }));
    aliceId = (await t.server.store.accounts.findByUsername('alice'))!.id;

    // 1. authorization code + PKCE for a confidential client, a wrong password first;
    //    then refresh, introspection, and revocation of the access token and the refresh token
    const request = await authorizationRequest(t, 'confidential-web', { scope: 'openid notes:read', resource: NOTES });
    collect(request.verifier, request.state);
    const browser = new Browser();
    let page = await browser.go(request.url, {}, REDIRECT);
    page = await browser.submit(findForm(page, '/login'), { username: 'alice', password: WRONG_PASSWORD }, undefined, REDIRECT);
    assert.equal(page.status, 401, 'the wrong password is refused');
    const callback = await authorize(browser, request.url, REDIRECT, PASSWORD);
    collect(callback.searchParams.get('code'));
    const tokens = await client.authorizationCodeGrant(request.config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state }, { resource: NOTES });
    collect(tokens.access_token, tokens.refresh_token, tokens.id_token);
    assert.ok(tokens.refresh_token, 'a refresh token');
    const refreshed = await client.refreshTokenGrant(request.config, tokens.refresh_token, { resource: NOTES });
    collect(refreshed.access_token, refreshed.refresh_token, refreshed.id_token);
    await client.tokenIntrospection(request.config, refreshed.access_token);
    await client.tokenRevocation(request.config, tokens.access_token);
    await client.tokenRevocation(request.config, refreshed.refresh_token ?? tokens.refresh_token);

    // 2. a public client: its refresh token rotates; the old one is presented again after the
    //    grace window (below), which is reuse
    const pub = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES });
    collect(pub.verifier, pub.state);
    const pubCallback = await authorize(browser, pub.url, REDIRECT, PASSWORD);
    collect(pubCallback.searchParams.get('code'));
    const pubTokens = await client.authorizationCodeGrant(pub.config, pubCallback, { pkceCodeVerifier: pub.verifier, expectedState: pub.state }, { resource: NOTES });
    collect(pubTokens.access_token, pubTokens.refresh_token);
    const rotated = await tokenRequest({ grant_type: 'refresh_token', refresh_token: pubTokens.refresh_token!, client_id: 'web-app' });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const rotatedAt = Date.now();

    // 3. consent refused: everything unticked, and Deny pressed (fresh sessions: nothing is kept)
    for (const how of [{ scopes: [] as string[] }, { deny: true }]) {
      const refused = await authorizationRequest(t, 'web-app', { scope: 'notes:read notes:write', resource: NOTES });
      collect(refused.verifier, refused.state);
      const answer = await authorize(new Browser(), refused.url, REDIRECT, PASSWORD, how);
      assert.equal(answer.searchParams.get('error'), 'access_denied', `consent refused (${JSON.stringify(how)})`);
    }

    // 4. client credentials, and a wrong secret
    const cc = await tokenRequest({ grant_type: 'client_credentials', resource: NOTES }, basic('nightly-report', SECRET));
    assert.equal(cc.status, 200, JSON.stringify(cc.body));
    const wrongSecret = 'not-the-secret-but-long-enough';
    secrets.add(wrongSecret);
    await tokenRequest({ grant_type: 'client_credentials', resource: NOTES }, basic('nightly-report', wrongSecret));

    // 5. device flow, with a wrong user code first
    const device = await startDevice(t);
    collect(device.device_code, device.user_code, device.user_code.replace('-', ''));
    await approveDevice(t, browser, device.user_code, { wrongCodeFirst: 'BCDF-GHJK' });
    const polled = await pollDevice(t, device.device_code);
    collect(polled.body.access_token, polled.body.refresh_token);
    assert.equal(polled.status, 200, JSON.stringify(polled.body));
    deviceGrant = String(decodeJwt(polled.body.access_token!).grant_id);

    // 6. the person revokes the device's grant on the connected-apps page
    page = await browser.go(t.url('/account/apps'));
    const revokeForm = page.forms.find((f) => f.action.endsWith('/account/apps/revoke') && f.fields.some((x) => x.name === 'grant' && x.value === deviceGrant));
    assert.ok(revokeForm, `a revoke form for the device grant on ${page.url} (${page.status})`);
    const revokedPage = await browser.submit(revokeForm);
    assert.equal(revokedPage.status, 200);

    // 7. dynamic registration: a confidential client that uses its secret, a refused one,
    //    then refused ones until the per-source limit answers 429
    const reg = await fetch(t.url('/register'), {
      method: 'POST',
      headers: JSON_TYPE,
      body: JSON.stringify({ client_name: 'Audit Holder', redirect_uris: ['https://app.example.com/cb'], grant_types: ['client_credentials'], response_types: [] }),
    });
    assert.equal(reg.status, 201, 'registered');
    const registered = (await reg.json()) as Record<string, string>;
    collect(registered.client_secret, registered.registration_access_token);
    const regToken = await tokenRequest({ grant_type: 'client_credentials', resource: NOTES }, basic(registered.client_id!, registered.client_secret!));
    assert.equal(regToken.status, 200, JSON.stringify(regToken.body));
    const badRegistration = () =>
      fetch(t!.url('/register'), {
        method: 'POST',
        headers: JSON_TYPE,
        body: JSON.stringify({ client_name: 'Bad Redirects', redirect_uris: ['not a url'], token_endpoint_auth_method: 'none' }),
      });
    assert.equal((await badRegistration()).status, 400, 'a registration with an invalid redirect URI is refused');
    let limited = false;
    for (let i = 0; i < REGISTRATIONS + 2 && !limited; i++) limited = (await badRegistration()).status === 429;
    assert.ok(limited, 'the registration limit was reached');

    // 8. a client id metadata document on a private address: never fetched
    const cimdAnswer = await openAuthorization(t!, PRIVATE_DOCUMENT);
    await cimdAnswer.text();
    assert.equal(cimdAnswer.status, 400, 'the document client is refused');

    // 9. a grant for the operator to revoke from the command line (a new session: a new grant,
    //    not the one the reuse below revokes)
    const opRequest = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES });
    collect(opRequest.verifier, opRequest.state);
    const opCallback = await authorize(new Browser(), opRequest.url, REDIRECT, PASSWORD);
    collect(opCallback.searchParams.get('code'));
    const opTokens = await client.authorizationCodeGrant(opRequest.config, opCallback, { pkceCodeVerifier: opRequest.verifier, expectedState: opRequest.state }, { resource: NOTES });
    collect(opTokens.access_token, opTokens.refresh_token);
    opGrant = String(decodeJwt(opTokens.access_token).grant_id);
    for (let i = 0; i < 100 && !(await t.server.store.grants.get(opGrant)); i++) await sleep(20);

    // 9b. second factors: alice sets up an authenticator app on her sign-in security page, signs
    //     in elsewhere with a wrong code then the right one, and there removes the app
    let security = await browser.go(t.url('/account/security/totp'));
    const totpSecret = /<code class="totp-secret">([A-Z2-7]+)<\/code>/.exec(security.html)?.[1];
    assert.ok(totpSecret, `a TOTP secret on ${security.url} (${security.status})`);
    secrets.add(totpSecret);
    security = await browser.submit(findForm(security, '/account/security/totp'), { code: await generate({ secret: totpSecret }) });
    for (const [, recoveryCode] of security.html.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)) secrets.add(recoveryCode!);
    const mfaBrowser = new Browser();
    const mfaRequest = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES });
    collect(mfaRequest.verifier, mfaRequest.state);
    let mfaPage = await mfaBrowser.go(mfaRequest.url, {}, REDIRECT);
    mfaPage = await mfaBrowser.submit(findForm(mfaPage, '/login'), { username: 'alice', password: PASSWORD }, undefined, REDIRECT);
    const current = await generate({ secret: totpSecret, epoch: Math.floor(Date.now() / 1000) + 30 });
    mfaPage = await mfaBrowser.submit(findForm(mfaPage, '/second-factor'), { code: String((Number(current) + 1) % 1_000_000).padStart(6, '0') }, undefined, REDIRECT);
    assert.equal(mfaPage.status, 401, 'a wrong code is refused');
    mfaPage = await mfaBrowser.submit(findForm(mfaPage, '/second-factor'), { code: current }, undefined, REDIRECT);
    assert.ok(mfaPage.forms.some((f) => f.action.endsWith('/confirm')), 'the right code signs in');
    security = await mfaBrowser.go(t.url('/account/security'));
    security = await mfaBrowser.submit(findForm(security, '/account/security/totp/remove'));
    assert.match(security.html, /was removed/);

    // 10. the rotated refresh token again, after the grace window: theft
    await sleep(Math.max(0, rotatedAt + GRACE * 1000 + 1100 - Date.now()));
    const reused = await tokenRequest({ grant_type: 'refresh_token', refresh_token: pubTokens.refresh_token!, client_id: 'web-app' });
    assert.equal(reused.status, 400, `reuse is refused: ${JSON.stringify(reused.body)}`);

    // 11. the operator, on the command line (each invocation its own chain, same directory)
    await cli(['keys', 'rotate']);
    await cli(['user', 'add', 'carol', '--role', 'dev'], `${CAROL_PASSWORD}\n`);
    await cli(['user', 'passwd', 'carol'], `${CAROL_NEW_PASSWORD}\n`);
    await cli(['user', 'roles', 'carol', '--role', 'ops']);
    await cli(['user', 'remove', 'carol']);
    await cli(['grants', 'revoke', opGrant]);

    // everything written, and the server's chain closed (its final checkpoint) before verify
    await t.server.audit.flush();
    await t.stop();
    t = undefined;
    const read = readRecords(auditDir);
    records = read.parsed;
    auditText = read.text;
  });

  after(async () => {
    await t?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the run itself: every command-line step succeeded', () => {
    assert.deepEqual(cliFailures, []);
  });

  test('every audit event type is in the audit log', () => {
    const seen = new Set(records.map((r) => r.event));
    const missing = AUDIT_EVENTS.filter((name) => !seen.has(name) && !(name in COVERED_ELSEWHERE));
    assert.deepEqual(missing, [], `missing from the audit log: ${missing.join(', ')} (seen: ${[...seen].sort().join(', ')})`);
  });

  test('the events proven elsewhere are asserted by the files named for them', () => {
    const root = new URL('../../../', import.meta.url);
    for (const [event, file] of Object.entries(COVERED_ELSEWHERE)) {
      const text = readFileSync(new URL(file, root), 'utf8');
      assert.ok(text.includes(`'${event}'`), `${file} does not assert the audit event ${event}`);
    }
  });

  test('the events say what the flows did', () => {
    const of = (event: string) => records.filter((r) => r.event === event);
    const issuedGrantTypes = new Set(of('token.issued').map((r) => r.details?.grantType));
    for (const grantType of ['authorization_code', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code']) {
      assert.ok(issuedGrantTypes.has(grantType), `token.issued for ${grantType} (got ${[...issuedGrantTypes].join(', ')})`);
    }
    assert.ok(of('token.refreshed').some((r) => r.details?.grantType === 'refresh_token'), 'token.refreshed names its grant type');
    assert.ok(of('login.failed').some((r) => r.outcome === 'failure'), 'login.failed is a failure');
    assert.ok(of('login.succeeded').some((r) => r.outcome === 'success' && r.actor === aliceId), 'login.succeeded names alice');
    assert.ok(of('consent.refused').length >= 2, 'both refusals (unticked, denied) are recorded');
    assert.ok(of('grant.revoked').some((r) => r.details?.grantId === deviceGrant), 'grant.revoked names the grant revoked on the connected-apps page');
    assert.ok(of('refresh_token.reuse_detected').some((r) => r.outcome === 'failure' && r.client === 'web-app'), 'reuse detected for web-app');
    assert.ok(of('admin.grant_revoked').some((r) => r.details?.grantId === opGrant), 'admin.grant_revoked names the grant');
    const rejections = of('cimd.rejected').filter((r) => r.client === PRIVATE_DOCUMENT);
    assert.equal(rejections.length, 1, 'one refused request, one cimd.rejected naming the refused client id');
    assert.ok(of('rate_limit.hit').some((r) => r.details?.limit === 'registrationPerSource'), 'rate_limit.hit names the limit');
    // the operator's actions come from the CLI's chains, as cli:<user>
    assert.ok(of('key.rotated').some((r) => String(r.actor).startsWith('cli:')), 'key.rotated by the CLI');
    for (const event of ['admin.user_added', 'admin.user_password_changed', 'admin.user_roles_changed', 'admin.user_removed', 'admin.grant_revoked']) {
      const found = of(event);
      assert.ok(found.some((r) => r.outcome === 'success'), `${event} succeeded`);
      for (const r of found) {
        assert.match(String(r.actor), /^cli:/, `${event} actor`);
        assert.match(String(r.chain), /^cli-/, `${event} is in a CLI chain`);
      }
    }
  });

  test('every record is well-formed and names what it should', () => {
    assert.ok(records.length > 20, `${records.length} records`);
    const problems: string[] = [];
    for (const r of records) {
      const where = `${r.event} (chain ${String(r.chain)} seq ${String(r.seq)})`;
      const problem = (text: string) => problems.push(`${where}: ${text}`);
      const parsed = auditRecordSchema.safeParse(r);
      if (!parsed.success) problem(`not a valid record: ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
      if (typeof r.time !== 'string' || Number.isNaN(Date.parse(r.time)) || new Date(r.time).toISOString() !== r.time) problem(`time ${String(r.time)} is not ISO`);
      if (!(AUDIT_EVENTS as readonly string[]).includes(r.event)) problem('unknown event');
      if (r.outcome !== 'success' && r.outcome !== 'failure') problem(`outcome ${String(r.outcome)}`);
      if (typeof r.chain !== 'string' || !r.chain) problem('no chain');
      if (!Number.isInteger(r.seq) || (r.seq as number) < 1) problem(`seq ${String(r.seq)}`);
      for (const key of ['prev', 'hash'] as const) if (typeof r[key] !== 'string' || !/^[0-9a-f]{64}$/.test(r[key] as string)) problem(`${key} is not a hex SHA-256`);

      if (REQUEST_EVENT.test(r.event)) {
        if (typeof r.requestId !== 'string' || !r.requestId) problem('no requestId');
        if (typeof r.source !== 'string' || !r.source) problem('no source');
      }
      const byPerson = r.event === 'login.succeeded' || r.event.startsWith('consent.') || (r.event === 'token.issued' && r.details?.grantType !== 'client_credentials');
      if (byPerson && r.actor !== aliceId) problem(`actor ${String(r.actor)} is not the person (${aliceId})`);
      if (r.event === 'consent.offered' || r.event === 'consent.granted') {
        if (!Array.isArray(r.details?.scopes)) problem('no details.scopes');
      }
      if (r.event === 'consent.granted' && typeof r.details?.grantId !== 'string') problem('no details.grantId');
      if (r.event === 'token.issued' || r.event === 'token.refreshed') {
        if (typeof r.client !== 'string' || !r.client) problem('no client');
        // every token of this run is for the notes server
        if (r.resource !== NOTES) problem(`resource ${String(r.resource)} is not ${NOTES}`);
        if (typeof r.details?.grantType !== 'string') problem('no details.grantType');
        if (typeof r.details?.jti !== 'string') problem('no details.jti');
        if (!Array.isArray(r.details?.scopes)) problem('no details.scopes');
      }
    }
    assert.deepEqual(problems, []);
  });

  test('no record holds a token, code, secret or password handled in the run', () => {
    assert.ok(secrets.size > 20, `collected ${secrets.size} secrets`);
    assert.ok(auditText.length > 0, 'there is an audit log');
    for (const secret of secrets) {
      assert.ok(!auditText.includes(secret), `the audit log contains a secret (${secret.slice(0, 4)}…, ${secret.length} chars)`);
    }
  });

  test('audit verify passes on the log, and fails on a copy with one record edited, saying where', async () => {
    const verify = await runCli(['audit', 'verify'], { dataDir, configFile });
    assert.equal(verify.code, 0, `${verify.stdout}\n${verify.stderr}`);
    const summary = /^ok: (\d+) record\(s\) in (\d+) chain\(s\)/.exec(verify.stdout);
    assert.ok(summary, verify.stdout);
    assert.equal(Number(summary[1]), records.length, 'verify read every record');
    assert.equal(Number(summary[2]), new Set(records.map((r) => r.chain)).size, 'and every chain');

    // a copy of the directory, given with --file, in the sink's order (rotated files, then the current one)
    const copyDir = join(dataDir, 'audit-copy');
    cpSync(auditDir, copyDir, { recursive: true });
    const ordered = readdirSync(copyDir)
      .filter((f) => /^audit-.+\.jsonl$/.test(f))
      .sort()
      .concat(readdirSync(copyDir).includes('audit.jsonl') ? ['audit.jsonl'] : [])
      .map((f) => join(copyDir, f));
    const files = ordered.flatMap((f) => ['--file', f]);
    const untouched = await runCli(['audit', 'verify', ...files], { dataDir, configFile });
    assert.equal(untouched.code, 0, `the untouched copy verifies: ${untouched.stdout}`);

    const current = join(copyDir, 'audit.jsonl');
    const lines = readFileSync(current, 'utf8').trimEnd().split('\n');
    const index = lines.findIndex((l) => (JSON.parse(l) as AuditRecord).event === 'login.failed');
    assert.ok(index >= 0, 'a login.failed record to edit');
    const record = JSON.parse(lines[index]!) as AuditRecord;
    lines[index] = JSON.stringify({ ...record, outcome: 'success' });
    writeFileSync(current, `${lines.join('\n')}\n`);

    const edited = await runCli(['audit', 'verify', ...files], { dataDir, configFile });
    assert.equal(edited.code, 1, edited.stdout);
    const place = `${current}:${index + 1}: edited: seq ${String(record.seq)} of chain ${String(record.chain)}`;
    assert.ok(edited.stdout.split('\n').some((l) => l.startsWith(place)), `"${place}" in:\n${edited.stdout}`);
    assert.match(edited.stdout, /^FAILED: 1 problem\(s\)/m);
  });
});
