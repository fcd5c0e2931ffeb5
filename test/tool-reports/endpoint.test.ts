/**
 * `POST /tool-executions` on each store: HTTP Basic as a resource-server client (401 otherwise),
 * a strict JSON body (400, 413), per-entry refusal of an MCP server the client does not act
 * as, one `tool.called` audit record per execution id however often it is sent.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { CALENDAR, NOTES, SECRET } from '../helpers/fixtures.js';

const DIGEST = `sha-256:${'A'.repeat(43)}`;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

const execution = (overrides: Record<string, unknown> = {}) => ({
  id: randomUUID(),
  tool: 'add_note',
  resource: NOTES,
  subject: 'acct-alice',
  client_id: 'web-app',
  grant_id: 'grant-1',
  token_jti: 'jti-1',
  outcome: 'success',
  duration_ms: 12,
  arguments_digest: DIGEST,
  arguments: '{"text":"[redacted]"}',
  started_at: new Date().toISOString(),
  ...overrides,
});

for (const kind of STORE_KINDS) {
  describe(`POST /tool-executions (${kind})`, () => {
    const s = serverFixture(kind);
    const post = (body: unknown, authorization = basic('notes-server', SECRET), type = 'application/json') =>
      fetch(s.t.url('/tool-executions'), { method: 'POST', headers: { authorization, 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    const toolRecords = async () => {
      await s.t.server.audit.flush();
      const file = join(s.t.dataDir, 'audit', 'audit.jsonl');
      if (!existsSync(file)) return [];
      return readFileSync(file, 'utf8')
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown> & { details: Record<string, unknown> })
        .filter((r) => r.event === 'tool.called');
    };

    it('refuses callers that are not a resource-server client with 401 invalid_client', async () => {
      for (const authorization of ['', basic('notes-server', 'wrong-secret'), basic('confidential-web', SECRET), 'Bearer x']) {
        const res = await post({ executions: [execution()] }, authorization);
        assert.equal(res.status, 401, authorization);
        assert.equal(((await res.json()) as { error: string }).error, 'invalid_client');
        assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /);
      }
      assert.equal((await toolRecords()).length, 0);
    });

    it('refuses a malformed body with 400 and a large one with 413', async () => {
      const bad = [{}, { executions: [] }, { executions: [execution({ outcome: 'maybe' })] }, { executions: [execution({ arguments_digest: 'md5:x' })] }, { executions: [execution({ extra: 1 })] }];
      for (const body of bad) {
        const res = await post(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
      }
      assert.equal((await post('{not json')).status, 400);
      assert.equal((await post({ executions: [execution()] }, undefined, 'text/plain')).status, 400);
      assert.equal((await post(JSON.stringify({ executions: [execution()], pad: 'x'.repeat(300 * 1024) }))).status, 413);
    });

    it('records each execution once as tool.called, refuses entries for other MCP servers, and takes retries without a second record', async () => {
      const mine = execution();
      const failed = execution({ outcome: 'error', tool: 'read_note', subject: undefined, grant_id: undefined, client_id: 'nightly-report' });
      const foreign = execution({ resource: CALENDAR });
      const tokenLike = execution({ subject: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln' });
      const res = await post({ executions: [mine, failed, foreign, tokenLike] });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.deepEqual(await res.json(), {
        accepted: 2,
        rejected: [
          { id: foreign.id, error: 'unauthorized_resource' },
          { id: tokenLike.id, error: 'invalid_entry' },
        ],
      });

      const again = await post({ executions: [mine] });
      assert.deepEqual(await again.json(), { accepted: 1, rejected: [] });

      const records = await toolRecords();
      assert.deepEqual(
        records.map((r) => r.details.executionId),
        [mine.id, failed.id],
        'one record per id; the refused entries are not recorded',
      );
      const [first, second] = records;
      assert.equal(first!.outcome, 'success');
      assert.equal(first!.actor, 'acct-alice');
      assert.equal(first!.client, 'web-app');
      assert.equal(first!.resource, NOTES);
      assert.deepEqual(
        { ...first!.details },
        {
          executionId: mine.id,
          tool: 'add_note',
          grantId: 'grant-1',
          durationMs: 12,
          argumentsDigest: DIGEST,
          arguments: '{"text":"[redacted]"}',
          reportedBy: 'notes-server',
          jti: 'jti-1',
          startedAt: mine.started_at,
        },
      );
      assert.equal(second!.outcome, 'failure');
      assert.equal(second!.actor, 'nightly-report', 'without a person the client is the actor');
    });
  });
}
