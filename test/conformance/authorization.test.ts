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

/**
 * The judge's summary line for `scenario` (`<scenario>: <n> passed, <m> failed`) names at least
 * one passed check and no failed one: a scenario that ran no check did not pass.
 */
export function assertScenarioPassed(summary: string, scenario: string): void {
  const lines = summary.split('\n').filter((line) => line.includes(`${scenario}:`));
  const counts = lines.map((line) => /(?:^|\s)(\S+): (\d+) passed, (\d+) failed\b/.exec(line)).filter((m) => m?.[1] === scenario);
  assert.equal(counts.length, 1, `one summary line for ${scenario}, got ${JSON.stringify(lines)}`);
  const [, , passed, failed] = counts[0]!;
  assert.ok(Number(passed) > 0, `${scenario}: no check passed (${lines[0]})`);
  assert.equal(Number(failed), 0, `${scenario}: ${failed} failed`);
}

describe('the judge summary check', () => {
  it('needs a positive count of passed checks and none failed', () => {
    assert.doesNotThrow(() => assertScenarioPassed('x\nauthorization-code-grant: 7 passed, 0 failed\n', 'authorization-code-grant'));
    for (const bad of ['authorization-code-grant: 0 passed, 0 failed', 'authorization-code-grant: 7 passed, 1 failed', 'authorization-code-grant: 7 passed, 10 failed', 'other: 7 passed, 0 failed', '']) {
      assert.throws(() => assertScenarioPassed(bad, 'authorization-code-grant'), assert.AssertionError, bad);
    }
  });
});

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
      assertScenarioPassed(summary, 'authorization-server-metadata-endpoint');
      assertScenarioPassed(summary, 'authorization-code-grant');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
