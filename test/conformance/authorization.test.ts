/**
 * An external judge: the `authorization` scenarios of @modelcontextprotocol/conformance
 * (0.2.0 pre-release) against the running server — RFC 8414 metadata, and an authorization
 * code grant with PKCE and `resource` that names no scope. The tool prints the authorization
 * URL and waits for a person; our fetch-driven browser signs in and consents in their place.
 * On Node 20 the tool needs the small `fs.globSync` shim next to this file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, authorize } from '../helpers/browser-driver.js';
import { serverFixture } from '../helpers/harness.js';
import { fixtureConfig, NOTES, PASSWORD } from '../helpers/fixtures.js';

const CLI = 'node_modules/@modelcontextprotocol/conformance/dist/index.js';
const SHIM = './test/conformance/node20-shim/register.mjs';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const fixture = fixtureConfig();
const config = {
  ...fixture,
  // a pre-registered public client of the judge; loopback-only, so any port is accepted
  clients: [...fixture.clients!, { client_id: 'conformance-judge', token_endpoint_auth_method: 'none' as const, redirect_uris: ['http://127.0.0.1/callback'] }],
};

describe('@modelcontextprotocol/conformance: authorization scenarios', () => {
  const s = serverFixture('sqlite', { config });

  it('passes the metadata and authorization-code-grant scenarios', { timeout: 120_000 }, async () => {
    const port = await freePort();
    const out = mkdtempSync(join(tmpdir(), 'mcp-authz-conformance-'));
    try {
      const judge = spawn(
        process.execPath,
        ['--import', SHIM, CLI, 'authorization', '--url', s.t.issuer, '--client-id', 'conformance-judge', '--port', String(port), '--resource', NOTES, '-o', out],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } },
      );
      let output = '';
      let driven: Promise<void> | undefined;
      const redirectUri = `http://127.0.0.1:${port}/callback`;
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const url = output.match(new RegExp(`${s.t.issuer.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/auth\\?\\S+`))?.[0];
        if (url && !driven) {
          // the person the judge waits for: sign in, consent, and let the browser reach the callback
          driven = authorize(new Browser(), url, redirectUri, PASSWORD).then(async (callback) => {
            await fetch(callback);
          });
        }
      };
      judge.stdout.on('data', onData);
      judge.stderr.on('data', onData);
      const code = await new Promise<number | null>((resolve) => judge.on('exit', resolve));
      await driven;
      const summary = output.replace(/\x1b\[[0-9;]*m/g, '');
      if (process.env.SHOW_JUDGE) console.log(summary);
      assert.equal(code, 0, summary.slice(-3000));
      assert.match(summary, /authorization-server-metadata-endpoint: \d+ passed, 0 failed/);
      assert.match(summary, /authorization-code-grant: \d+ passed, 0 failed/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
