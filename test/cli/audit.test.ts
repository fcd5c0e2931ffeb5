/**
 * `mcp-authz audit verify | tail | search`, run as the built CLI in a child process on a data
 * directory written by the audit log (file sink, SQLite store), and on a collected stdout.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { openStore } from '../../adapters/index.js';
import { createAccountService } from '../../src/accounts/service.js';
import { createAuditLog } from '../../src/audit/log.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { fixtureConfig, PASSWORD } from '../helpers/fixtures.js';
import { auditConfig, capturedLogger } from '../audit/support.js';
import { runCli, type CliResult } from '../helpers/cli.js';

const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-audit-cli-'));
const configFile = join(dataDir, 'config.json');
const stdoutConfigFile = join(dataDir, 'config-stdout.json');
const auditFile = join(dataDir, 'audit', 'audit.jsonl');
let aliceId: string;
let collectedStdout: string;

function cli(args: string[], config = configFile): Promise<CliResult> {
  return runCli(args, { dataDir, configFile: config });
}

const jsonLines = (text: string) => text.trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

before(async () => {
  writeFileSync(configFile, JSON.stringify({ ...fixtureConfig() }));
  writeFileSync(stdoutConfigFile, JSON.stringify({ ...fixtureConfig(), audit: { sink: 'stdout' } }));
  const store = await openStore({ dataDir, redisKeyPrefix: 'x:' });
  try {
    aliceId = (await createAccountService(store.accounts).create('alice', PASSWORD, [])).id;
    const events: AuditEvent[] = [
      { event: 'login.succeeded', outcome: 'success', actor: aliceId, client: 'web-app', source: '127.0.0.1' },
      { event: 'token.issued', outcome: 'success', actor: aliceId, client: 'web-app', resource: 'https://notes.example.com/mcp' },
      { event: 'login.failed', outcome: 'failure', client: 'web-app', details: { username: 'bob', reason: 'bad_credentials' } },
      { event: 'token.issued', outcome: 'success', actor: 'nightly-report', client: 'nightly-report' },
      { event: 'admin.user_removed', outcome: 'success', actor: 'cli:root', details: { username: 'alice', accountId: aliceId } },
      { event: 'token.revoked', outcome: 'success', actor: aliceId, client: 'tv-app' },
    ];
    const audit = createAuditLog({ config: auditConfig(dataDir), store, log: capturedLogger().log });
    for (const e of events) audit.record(e);
    await audit.close();

    // the same events on a stdout shared with log lines, as a container runtime collects it
    let collected = '';
    const out = new PassThrough();
    out.setEncoding('utf8').on('data', (d: string) => (collected += d));
    const viaStdout = createAuditLog({ config: auditConfig(dataDir, { sink: 'stdout' }), store, log: capturedLogger().log, out });
    for (const e of events) {
      out.write(`${JSON.stringify({ level: 30, time: new Date().toISOString(), service: 'mcp-authz', msg: 'request' })}\n`);
      viaStdout.record(e);
      await viaStdout.flush();
    }
    await viaStdout.close();
    collectedStdout = join(dataDir, 'collected-stdout.log');
    writeFileSync(collectedStdout, collected);
  } finally {
    await store.close();
  }
});
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('audit verify: exit 0 and a summary on an untouched log', async () => {
  const { code, stdout, stderr } = await cli(['audit', 'verify']);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^ok: 6 record\(s\) in 1 chain\(s\) from /);
});

test('audit verify: exit 1 with one line per problem, saying where, after an edit', async () => {
  const original = readFileSync(auditFile, 'utf8');
  try {
    const lines = original.trimEnd().split('\n');
    lines[2] = lines[2]!.replace('"reason":"bad_credentials"', '"reason":"none"');
    writeFileSync(auditFile, `${lines.join('\n')}\n`);
    const { code, stdout } = await cli(['audit', 'verify']);
    assert.equal(code, 1);
    const out = stdout.trimEnd().split('\n');
    assert.equal(out.length, 2, stdout);
    assert.match(out[0]!, new RegExp(`^${auditFile}:3: edited: seq 3 of chain `));
    assert.match(out[1]!, /^FAILED: 1 problem\(s\) in 6 record\(s\)/);

    // the last two records deleted: the checkpoint stored on close says so
    writeFileSync(auditFile, `${original.trimEnd().split('\n').slice(0, 4).join('\n')}\n`);
    const truncated = await cli(['audit', 'verify']);
    assert.equal(truncated.code, 1);
    assert.match(truncated.stdout, new RegExp(`^${auditFile}:4: truncated: records deleted at the end of chain .*checkpoint is at seq 6, the last record seen is seq 4`, 'm'));
  } finally {
    writeFileSync(auditFile, original);
  }
});

test('audit tail: the last N records as JSON lines, 20 by default', async () => {
  const two = await cli(['audit', 'tail', '--lines', '2']);
  assert.equal(two.code, 0, two.stderr);
  assert.deepEqual(jsonLines(two.stdout).map((r) => [r.seq, r.event]), [[5, 'admin.user_removed'], [6, 'token.revoked']]);
  const all = await cli(['audit', 'tail']);
  assert.equal(jsonLines(all.stdout).length, 6);
});

test('audit search: by username (resolved to the account id), client, event family and time', async () => {
  const byUser = await cli(['audit', 'search', '--user', 'alice']);
  assert.equal(byUser.code, 0, byUser.stderr);
  // alice's own actions, and the administrative event about her account
  assert.deepEqual(jsonLines(byUser.stdout).map((r) => r.seq), [1, 2, 5, 6]);

  const byId = await cli(['audit', 'search', '--user', aliceId, '--client', 'web-app']);
  assert.deepEqual(jsonLines(byId.stdout).map((r) => r.seq), [1, 2]);

  const byEvent = await cli(['audit', 'search', '--event', 'token']);
  assert.deepEqual(jsonLines(byEvent.stdout).map((r) => r.event), ['token.issued', 'token.issued', 'token.revoked']);
  const exact = await cli(['audit', 'search', '--event', 'login.failed', '--since', '1h']);
  assert.deepEqual(jsonLines(exact.stdout).map((r) => r.seq), [3]);

  const future = await cli(['audit', 'search', '--since', new Date(Date.now() + 3_600_000).toISOString()]);
  assert.equal(future.code, 0);
  assert.equal(future.stdout, '');
});

test('the stdout sink: the commands need --file, and read the collected output past its log lines', async () => {
  const without = await cli(['audit', 'verify'], stdoutConfigFile);
  assert.equal(without.code, 2);
  assert.match(without.stderr, /the audit sink is stdout: give --file FILE/);

  const verify = await cli(['audit', 'verify', '--file', collectedStdout], stdoutConfigFile);
  assert.equal(verify.code, 0, verify.stdout);
  assert.match(verify.stdout, /^ok: 6 record\(s\) in 1 chain\(s\) .*\(6 other line\(s\) skipped\)/);
  const tail = await cli(['audit', 'tail', '--lines', '1', '--file', collectedStdout], stdoutConfigFile);
  assert.deepEqual(jsonLines(tail.stdout).map((r) => r.event), ['token.revoked']);
});

test('a wrong command line exits 2 and says why', async () => {
  for (const [args, message] of [
    [['audit', 'frobnicate'], /unknown audit subcommand/],
    [['audit', 'tail', '--lines', '0'], /--lines needs a whole number/],
    [['audit', 'search', '--since', 'yesterday'], /--since needs an ISO time or a duration/],
    [['audit', 'search', '--event', 'nope'], /unknown event "nope"/],
    [['audit', 'verify', '--user', 'alice'], /audit verify does not take --user/],
  ] as const) {
    const { code, stderr } = await cli([...args]);
    assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
    assert.match(stderr, message);
  }
});

test('other commands leave no audit trace when they record nothing', async () => {
  const before = readFileSync(auditFile, 'utf8');
  const { code } = await cli(['user', 'list']);
  assert.equal(code, 0);
  assert.equal(readFileSync(auditFile, 'utf8'), before);
  const verify = await cli(['audit', 'verify']);
  assert.equal(verify.code, 0, verify.stdout);
});
