/**
 * The audit log inside a real server: created with it, recording the first start's new
 * signing keys, writing nothing more until something happens (start-up and requests that
 * change nothing record nothing), checkpointed when the server closes, and written before
 * the answer whose record it is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.js';
import { readCheckpoint } from '../../src/audit/checkpoints.js';
import { openStore } from '../../adapters/index.js';
import { sampleEvent } from './support.js';
import { decodeJwt } from 'jose';
import { NOTES, SECRET } from '../helpers/fixtures.js';

const records = (dataDir: string) => {
  const file = join(dataDir, 'audit', 'audit.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as { event: string; chain: string; actor?: string; details?: Record<string, unknown> });
};

test('the first start records its new keys; later starts and reads record nothing; what is given is written, and checkpointed on close', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-audit-server-'));
  let server: TestServer | undefined;
  try {
    server = await startServer({ store: 'sqlite', dataDir });
    await server.server.audit.flush();
    const first = records(dataDir);
    assert.deepEqual(first.map((r) => [r.event, r.actor, r.details]), [['key.rotated', 'server', { created: true }]]);
    await server.stop();
    server = undefined;

    server = await startServer({ store: 'sqlite', dataDir });
    const res = await fetch(server.url('/.well-known/oauth-authorization-server'));
    assert.equal(res.status, 200);
    await server.server.audit.flush();
    assert.equal(records(dataDir).length, 1, 'a restart and a metadata request record nothing');

    server.server.audit.record(sampleEvent(1));
    await server.server.audit.flush();
    const all = records(dataDir);
    assert.equal(all.length, 2);
    const { chain } = all[1]!;
    assert.notEqual(chain, first[0]!.chain, 'each server process writes its own chain');
    await server.stop();
    server = undefined;

    const store = await openStore({ dataDir, redisKeyPrefix: 'x:' });
    try {
      const checkpoint = await readCheckpoint(store.settings, chain);
      assert.equal(checkpoint?.seq, 1);
      assert.equal(checkpoint?.closed, true);
    } finally {
      await store.close();
    }
  } finally {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a token response is sent only once its audit record is written (group commit): concurrent requests share writes', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-audit-barrier-'));
  const server = await startServer({ store: 'sqlite', dataDir });
  try {
    const request = () =>
      fetch(server.url('/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
      }).then(async (res) => ({ status: res.status, jti: decodeJwt(((await res.json()) as { access_token: string }).access_token).jti }));
    // the file is read the moment each answer arrives, without waiting for anything
    const answers = await Promise.all(Array.from({ length: 20 }, async () => {
      const answer = await request();
      return { ...answer, onDisk: records(dataDir).some((r) => r.event === 'token.issued' && r.details?.jti === answer.jti) };
    }));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.ok(answer.onDisk, `token ${answer.jti} was answered before its audit record was written`);
    }
    const issued = records(dataDir).filter((r) => r.event === 'token.issued');
    assert.equal(issued.length, 20);
    assert.equal(new Set(issued.map((r) => r.details?.jti)).size, 20);
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
