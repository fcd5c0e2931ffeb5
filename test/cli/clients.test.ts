/**
 * `mcp-authz clients list`, run as the built CLI against the SQLite store a real server
 * wrote: a configured client, a dynamically registered one that signed a person in, and one
 * that only registered — each with its kind and last use.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.js';
import { fixtureConfig } from '../helpers/fixtures.js';
import { userTokens } from '../helpers/flows.js';
import { runCli, type CliResult } from '../helpers/cli.js';

const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-clients-cli-'));
const configFile = join(dataDir, 'config.json');
let server: TestServer;
let registered: string;

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, { dataDir, configFile });
}

before(async () => {
  writeFileSync(configFile, JSON.stringify({ ...fixtureConfig() }));
  server = await startServer({ store: 'sqlite', dataDir });
  await userTokens(server, 'web-app');
  const res = await fetch(server.url('/register'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'Idle\tAgent\n', redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none', scope: 'notes:read' }),
  });
  registered = ((await res.json()) as { client_id: string }).client_id;
  await server.stop();
});
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('clients list shows every client with its kind and last use', async () => {
  const { code, stdout, stderr } = await cli(['clients', 'list']);
  assert.equal(code, 0, stderr);
  const rows = stdout.trim().split('\n').map((line) => line.split('\t'));
  assert.deepEqual(rows[0], ['CLIENT ID', 'KIND', 'NAME', 'FIRST SEEN', 'LAST USED']);
  const byId = new Map(rows.slice(1).map((r) => [r[0], r]));
  const webApp = byId.get('web-app');
  assert.equal(webApp?.[1], 'static');
  assert.match(webApp?.[4] ?? '', /^\d{4}-\d\d-\d\dT/, 'the static client that signed alice in has a last use');
  assert.equal(byId.get('nightly-report')?.[4], '-', 'a configured client never used has none');
  const dcr = byId.get(registered);
  assert.equal(dcr?.[1], 'dcr');
  assert.equal(dcr?.[2]?.trim(), 'Idle Agent', 'control characters in a client-chosen name never reach the terminal');
  assert.equal(dcr?.[4], '-');
});

test('clients list --kind filters; bad usage exits 2', async () => {
  const only = await cli(['clients', 'list', '--kind', 'dcr']);
  assert.equal(only.code, 0);
  const ids = only.stdout.trim().split('\n').slice(1).map((l) => l.split('\t')[0]);
  assert.deepEqual(ids, [registered]);
  assert.equal((await cli(['clients', 'list', '--kind', 'robots'])).code, 2);
  assert.equal((await cli(['clients', 'frobnicate'])).code, 2);
});
