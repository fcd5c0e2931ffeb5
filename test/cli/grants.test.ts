/**
 * `mcp-authz grants list` and `grants revoke`, run as the built CLI against the SQLite store
 * a real server writes (and keeps running: the CLI is another process on the same file). A
 * revoke from the CLI ends the grant at the token endpoint and reaches the server's
 * revocation feed, which verifiers follow.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startServer, type TestServer } from '../helpers/server.js';
import { fixtureConfig, NOTES, PASSWORD, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { authorize, Browser } from '../helpers/browser-driver.js';
import { client } from '../helpers/rp.js';
import { SseClient, revocationFor } from '../helpers/sse.js';
import { runCli, type CliResult } from '../helpers/cli.js';

const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-grants-cli-'));
const configFile = join(dataDir, 'config.json');
let server: TestServer;

interface Grant {
  grantId: string;
  config: client.Configuration;
  refreshToken: string;
}
const grants: Record<'aliceWeb' | 'aliceConfidential' | 'bobWeb', Grant> = {} as never;

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, { dataDir, configFile });
}

async function connect(browser: Browser, clientId: 'web-app' | 'confidential-web', username: string): Promise<Grant> {
  const { config, verifier, state, url } = await authorizationRequest(server, clientId, { scope: 'notes:read', resource: NOTES });
  const callback = await authorize(browser, url, REDIRECT, PASSWORD, { username });
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
  return { grantId: decodeJwt(tokens.access_token).grant_id as string, config, refreshToken: tokens.refresh_token! };
}

/** The table's data rows as GRANT ID → cells. */
function rows(stdout: string): Map<string, string[]> {
  const lines = stdout.trim().split('\n').map((line) => line.split('\t'));
  assert.deepEqual(lines[0], ['GRANT ID', 'USER', 'CLIENT', 'CREATED', 'LAST USED']);
  return new Map(lines.slice(1).map((cells) => [cells[0]!, cells]));
}

before(async () => {
  writeFileSync(configFile, JSON.stringify({ ...fixtureConfig() }));
  server = await startServer({ store: 'sqlite', dataDir, users: { alice: [], bob: [] } });
  const alice = new Browser();
  grants.aliceWeb = await connect(alice, 'web-app', 'alice');
  grants.aliceConfidential = await connect(alice, 'confidential-web', 'alice');
  grants.bobWeb = await connect(new Browser(), 'web-app', 'bob');
  // the grant directory's last use is written after the token answer: make sure it is there
  for (const { grantId } of Object.values(grants)) {
    for (let i = 0; i < 100 && !(await server.server.store.grants.get(grantId))?.lastUsedAt; i++) await new Promise((r) => setTimeout(r, 20));
  }
});
after(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('grants list shows every grant, newest first, with its user, client and times', async () => {
  const { code, stdout, stderr } = await cli(['grants', 'list']);
  assert.equal(code, 0, stderr);
  const table = rows(stdout);
  assert.deepEqual([...table.keys()], [grants.bobWeb.grantId, grants.aliceConfidential.grantId, grants.aliceWeb.grantId], 'newest first');
  assert.deepEqual(table.get(grants.aliceWeb.grantId)?.slice(1, 3), ['alice', 'web-app']);
  assert.deepEqual(table.get(grants.aliceConfidential.grantId)?.slice(1, 3), ['alice', 'confidential-web']);
  assert.deepEqual(table.get(grants.bobWeb.grantId)?.slice(1, 3), ['bob', 'web-app']);
  for (const cells of table.values()) {
    assert.match(cells[3]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'created');
    assert.match(cells[4]!, /^\d{4}-\d\d-\d\dT/, 'last used (each grant redeemed its code)');
  }
});

test('grants list --user and --client filter; an unknown user exits 1; bad usage exits 2', async () => {
  const ids = async (args: string[]) => {
    const run = await cli(['grants', 'list', ...args]);
    assert.equal(run.code, 0, run.stderr);
    return [...rows(run.stdout).keys()];
  };
  assert.deepEqual(await ids(['--user', 'alice']), [grants.aliceConfidential.grantId, grants.aliceWeb.grantId]);
  assert.deepEqual(await ids(['--client', 'web-app']), [grants.bobWeb.grantId, grants.aliceWeb.grantId]);
  assert.deepEqual(await ids(['--user', 'bob', '--client', 'web-app']), [grants.bobWeb.grantId]);
  assert.deepEqual(await ids(['--user', 'bob', '--client', 'confidential-web']), []);

  const nobody = await cli(['grants', 'list', '--user', 'nobody']);
  assert.equal(nobody.code, 1);
  assert.match(nobody.stderr, /no user named "nobody"/);
  assert.equal((await cli(['grants', 'list', '--kind', 'dcr'])).code, 2);
  assert.equal((await cli(['grants', 'list', 'extra'])).code, 2);
  assert.equal((await cli(['grants', 'revoke'])).code, 2);
  assert.equal((await cli(['grants', 'frobnicate'])).code, 2);
});

test('grants revoke ends the grant (refresh is invalid_grant) and publishes it on the feed; a second revoke exits 1', async () => {
  const feed = new SseClient(server.url('/revocations'));
  try {
    await feed.next((e) => e.event === 'ready');
    const target = grants.aliceWeb;
    const { code, stdout, stderr } = await cli(['grants', 'revoke', target.grantId]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^revoked grant /);
    await feed.next(revocationFor('grant', target.grantId), 2000);
    await assert.rejects(client.refreshTokenGrant(target.config, target.refreshToken), (err: { error?: string }) => err.error === 'invalid_grant');

    const listed = await cli(['grants', 'list', '--user', 'alice']);
    assert.deepEqual([...rows(listed.stdout).keys()], [grants.aliceConfidential.grantId]);
    const again = await cli(['grants', 'revoke', target.grantId]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no grant ".+"/);
    // the others are untouched
    const refreshed = await client.refreshTokenGrant(grants.bobWeb.config, grants.bobWeb.refreshToken);
    assert.ok(refreshed.access_token);
  } finally {
    await feed.close();
  }
});
