/**
 * The promise of the revocation feed, literally: a verifier in ANOTHER process (an MCP server)
 * refuses an access token within one second of the revocation request returning, on both
 * stores.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { NOTES, SECRET } from '../helpers/fixtures.js';

const basic = `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}`;

for (const kind of STORE_KINDS) {
  describe(`revocation reaches a verifier in another process (${kind})`, () => {
    const s = serverFixture(kind);
    let child: ChildProcess;
    let checkUrl: string;

    before(async () => {
      child = spawn(process.execPath, ['dist/test/revocation/verifier-process.js', s.t.issuer, NOTES], { stdio: ['ignore', 'pipe', 'inherit'] });
      const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
      checkUrl = chunk.toString().trim();
    });
    after(async () => {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    });

    it('refuses the revoked token within 1 s of the revocation returning', async () => {
      const issued = await fetch(s.t.url('/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
      });
      const token = ((await issued.json()) as { access_token: string }).access_token;
      const check = () => fetch(checkUrl, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
      assert.equal(await check(), 200, 'accepted before revocation');

      const revoked = await fetch(s.t.url('/token/revocation'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
        body: new URLSearchParams({ token }),
      });
      assert.equal(revoked.status, 200);
      const returned = Date.now();
      let status = await check();
      while (status === 200 && Date.now() - returned < 2000) {
        await new Promise((r) => setTimeout(r, 10));
        status = await check();
      }
      const elapsed = Date.now() - returned;
      assert.equal(status, 401, 'refused');
      assert.ok(elapsed < 1000, `refused after ${elapsed} ms`);
    });
  });
}
