/**
 * `mcp-authz user reset-second-factors NAME`, the built CLI against a SQLite store: the way out
 * for a person who lost their device and recovery codes, or whose record needs attention. Every
 * factor goes, the operator's action is audited, a missing account is exit 1.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../adapters/index.js';
import { createAccountService } from '../../src/accounts/service.js';
import { runCli } from '../helpers/cli.js';

const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-2fa-cli-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('reset-second-factors clears the record, even one that does not parse; unknown accounts exit 1', { timeout: 60_000 }, async () => {
  const store = await openStore({ dataDir, redisKeyPrefix: 'unused:' });
  try {
    await createAccountService(store.accounts).create('alice', 'a-long-password-1', []);
    await store.accounts.update('alice', { secondFactors: '{"totp": "broken"' });
  } finally {
    await store.close();
  }
  const done = await runCli(['user', 'reset-second-factors', 'alice'], { dataDir });
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, /second factors of user alice removed/);
  const after = await openStore({ dataDir, redisKeyPrefix: 'unused:' });
  try {
    assert.equal((await after.accounts.findByUsername('alice'))!.secondFactors, undefined);
  } finally {
    await after.close();
  }
  // the operator's action is in the audit log (the file sink in the data directory, by default)
  const audit = readdirSync(join(dataDir, 'audit'))
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => readFileSync(join(dataDir, 'audit', f), 'utf8'))
    .join('\n');
  const records = audit.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { event: string; details?: Record<string, unknown> });
  assert.ok(records.some((r) => r.event === 'second_factor.removed' && r.details?.by === 'operator' && r.details?.username === 'alice'));
  const missing = await runCli(['user', 'reset-second-factors', 'nobody'], { dataDir });
  assert.equal(missing.code, 1);
  const usage = await runCli(['user', 'reset-second-factors'], { dataDir });
  assert.equal(usage.code, 2);
});
