/**
 * `mcp-authz serve` on SQLite killed for real (SIGKILL) in the middle of a load of token
 * issuance and refresh rotations, then started again on the same data directory: every grant
 * and refresh token a client was given still works, every token a client was given has its
 * audit record, and `mcp-authz audit verify` passes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { openStore } from '../../adapters/index.js';
import { createAccountService } from '../../src/accounts/service.js';
import { fixtureConfig, NOTES, PASSWORD, SECRET } from '../helpers/fixtures.js';
import { userTokens } from '../helpers/flows.js';
import { serveProcess, type ServeProcess } from '../helpers/serve-process.js';
import { runCli } from '../helpers/cli.js';
import type { TestServer } from '../helpers/server.js';

describe('the server killed (SIGKILL) under load on SQLite', () => {
  let dir: string;
  let dataDir: string;
  let configFile: string;
  let server: ServeProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-authz-kill-'));
    dataDir = join(dir, 'data');
    configFile = join(dir, 'mcp-authz.json');
    // the longest grace window: a rotation answered just before the kill is replayed to the client's
    // retry only within it, and a restart on a busy machine can take longer than the default 5 s
    writeFileSync(configFile, JSON.stringify({ ...fixtureConfig(), rateLimits: { tokenPerClient: { max: 100_000, window: 60 } }, refreshTokens: { reuseGraceWindow: 60 } }));
    const store = await openStore({ dataDir, redisKeyPrefix: 'x:' });
    await createAccountService(store.accounts).create('alice', PASSWORD);
    await store.close();
    server = await serveProcess({ dataDir, configFile });
    await server.start();
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(server.url('/token'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) }).then(
      async (res) => ({ status: res.status, body: (await res.json()) as { access_token?: string; refresh_token?: string; error?: string } }),
    );
  const basic = { authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` };

  it('keeps every grant, refresh token and audit record it acknowledged; the audit chain verifies', async () => {
    const chains = await Promise.all(Array.from({ length: 3 }, () => userTokens(server as unknown as TestServer, 'web-app')));
    /** the refresh token each client holds: the last one it was given */
    const held = chains.map((c) => c.tokens.refresh_token!);
    const acknowledgedJtis = new Set<string>(chains.map((c) => String(decodeJwt(c.tokens.access_token).jti)));

    let loading = true;
    const issuing = Array.from({ length: 3 }, async () => {
      while (loading) {
        const answer = await post({ grant_type: 'client_credentials', resource: NOTES }, basic).catch(() => undefined);
        if (answer?.status === 200) acknowledgedJtis.add(String(decodeJwt(answer.body.access_token!).jti));
      }
    });
    const rotating = held.map(async (_, i) => {
      while (loading) {
        const answer = await post({ grant_type: 'refresh_token', client_id: 'web-app', refresh_token: held[i]! }).catch(() => undefined);
        if (answer?.status === 200) {
          held[i] = answer.body.refresh_token!;
          acknowledgedJtis.add(String(decodeJwt(answer.body.access_token!).jti));
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await server.stop('SIGKILL');
    loading = false;
    await Promise.all([...issuing, ...rotating]);
    assert.ok(acknowledgedJtis.size > 20, `load ran (${acknowledgedJtis.size} tokens acknowledged)`);

    await server.start();
    // every refresh token a client holds still refreshes (a rotation the client never heard of
    // is answered again within the grace window)
    for (const token of held) {
      const answer = await post({ grant_type: 'refresh_token', client_id: 'web-app', refresh_token: token });
      assert.equal(answer.status, 200, `a refresh token the client was given: ${JSON.stringify(answer.body)}`);
    }
    // every access token a client was given has its audit record
    const recorded = new Set<string>();
    for (const file of readdirSync(join(dataDir, 'audit'))) {
      for (const line of readFileSync(join(dataDir, 'audit', file), 'utf8').split('\n')) {
        if (!line) continue;
        const record = JSON.parse(line) as { event: string; details?: { jti?: string } };
        if ((record.event === 'token.issued' || record.event === 'token.refreshed') && record.details?.jti) recorded.add(record.details.jti);
      }
    }
    const missing = [...acknowledgedJtis].filter((jti) => !recorded.has(jti));
    assert.deepEqual(missing, [], 'acknowledged tokens without an audit record');
    const verify = await runCli(['audit', 'verify'], { dataDir, configFile });
    assert.equal(verify.code, 0, `audit verify: ${verify.stdout}${verify.stderr}`);
  });
});
