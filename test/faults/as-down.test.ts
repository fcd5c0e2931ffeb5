/**
 * The authorization server down (its process stopped for real): an MCP server's verifier keeps
 * verifying with the keys it has, for as long as its staleness rule allows (`revocation.staleAfter`
 * without a word from the feed), then fails closed with 503 and Retry-After; once the server is
 * back it serves again, and revocations reach it again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVerifier, type Verifier } from '../../src/verifier/index.js';
import { fixtureConfig, NOTES, SECRET } from '../helpers/fixtures.js';
import { serveProcess, type ServeProcess } from '../helpers/serve-process.js';
import { codeOf, eventually } from '../verifier/support.js';
import { PUSH_BOUND_MS } from '../helpers/timing.js';

describe('the authorization server down, seen from a verifier', () => {
  let dir: string;
  let server: ServeProcess;
  let verifier: Verifier;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-authz-as-down-'));
    const configFile = join(dir, 'mcp-authz.json');
    writeFileSync(configFile, JSON.stringify(fixtureConfig()));
    server = await serveProcess({ dataDir: join(dir, 'data'), configFile });
    await server.start();
    verifier = createVerifier({ issuer: server.issuer, resource: NOTES, revocation: { staleAfter: 8, onError: () => {} } });
    await verifier.ready();
  });
  after(async () => {
    await verifier?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const basic = `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}`;
  const token = () =>
    fetch(server.url('/token'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES }),
    }).then(async (res) => ((await res.json()) as { access_token: string }).access_token);

  it('verifies with cached keys within the staleness bound, fails closed after it, and recovers', async () => {
    const [seen, unseen] = [await token(), await token()];
    await verifier.verifyAccessToken(seen);
    await server.stop('SIGKILL');
    const downAt = Date.now();
    // keys are cached and the feed was heard from less than staleAfter ago: tokens still verify
    assert.equal((await verifier.verifyAccessToken(unseen)).clientId, 'nightly-report', 'a token not seen before, with the cached keys');
    assert.equal((await verifier.verifyAccessToken(seen)).clientId, 'nightly-report');
    // the server's heartbeat comes every 5 s, so within 3 s of the kill the feed is still fresh (< 8 s)
    assert.ok(Date.now() - downAt < 3000, 'both checks ran inside the staleness bound');
    // past the bound: fail closed, 503 with Retry-After, for every token
    await eventually(async () => (await codeOf(verifier.verifyAccessToken(seen))) === 'ERR_AUTHZ_UNAVAILABLE', 15_000);
    const refused = await verifier.verifyAccessToken(unseen).catch((err: unknown) => err);
    const challenge = verifier.challenge(refused);
    assert.equal(challenge.status, 503);
    assert.ok(Number(challenge.headers['Retry-After']) >= 1);
    assert.equal(verifier.revocationStatus()?.fresh, false);

    await server.start();
    await eventually(async () => (await codeOf(verifier.verifyAccessToken(seen))) === 'resolved', 10_000);
    // and revocations reach it again
    const revoked = await fetch(server.url('/token/revocation'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
      body: new URLSearchParams({ token: unseen }),
    });
    assert.equal(revoked.status, 200);
    assert.ok((await eventually(async () => (await codeOf(verifier.verifyAccessToken(unseen))) === 'ERR_TOKEN_REVOKED', PUSH_BOUND_MS)) < PUSH_BOUND_MS);
  });
});
