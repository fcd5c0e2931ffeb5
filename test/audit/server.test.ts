/**
 * The audit log inside a real server: created with it, writing nothing until something is
 * recorded (start-up and requests record nothing yet), and checkpointed when the server closes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../helpers/server.js';
import { CHAIN_INDEX, readCheckpoint } from '../../src/audit/checkpoints.js';
import { openStore } from '../../adapters/index.js';
import { sampleEvent } from './support.js';

test('a server records nothing by itself; what it is given is written, and checkpointed on close', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-audit-server-'));
  try {
    const server = await startServer({ store: 'sqlite', dataDir });
    const res = await fetch(server.url('/.well-known/oauth-authorization-server'));
    assert.equal(res.status, 200);
    await server.server.audit.flush();
    assert.equal(existsSync(join(dataDir, 'audit')), false);
    assert.equal(await server.server.store.settings.get(CHAIN_INDEX), undefined);

    server.server.audit.record(sampleEvent(1));
    await server.server.audit.flush();
    const lines = readFileSync(join(dataDir, 'audit', 'audit.jsonl'), 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 1);
    const { chain } = JSON.parse(lines[0]!) as { chain: string };
    await server.stop();

    const store = await openStore({ dataDir, redisKeyPrefix: 'x:' });
    try {
      const checkpoint = await readCheckpoint(store.settings, chain);
      assert.equal(checkpoint?.seq, 1);
      assert.equal(checkpoint?.closed, true);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
