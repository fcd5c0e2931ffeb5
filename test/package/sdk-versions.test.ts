/**
 * An MCP server as its author writes it: the packed mcp-authz (without the server's optional
 * dependencies) and the OLDEST `@modelcontextprotocol/sdk` our peer range allows, installed in
 * a folder of their own; the SDK's unchanged `requireBearerAuth({ verifier })` with the verifier
 * from plain `mcp-authz/verifier`, in an ES module server and in a CommonJS one. Each answers 401
 * with the challenge for a missing, malformed, expired, foreign or revoked token and 403 for a
 * missing scope; with the authorization server unreachable, the SDK's fixed `server_error`.
 * (The SDK version in devDependencies: test/verifier/mcp-sdk.test.ts.)
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.js';
import { clientCredentialsToken, eventually, now, startFakeAs, NOTES, SECRET, type FakeAs } from '../verifier/support.js';
import { PUSH_BOUND_MS } from '../helpers/timing.js';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const ROOT = process.cwd();

/** The lowest version `peerDependencies` allows (`^1.17.0` → 1.17.0). */
function oldestSdk(): string {
  const range = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> }).peerDependencies['@modelcontextprotocol/sdk']!;
  const match = /^\^(\d+\.\d+\.\d+)$/.exec(range);
  assert.ok(match, `a caret range: ${range}`);
  return match[1]!;
}

/** The MCP server: `/read`, `/write` (needs notes:write), `/expiring` (a verifier of the fake AS), `/down` (an AS nobody serves). */
const SERVER = (kind: 'esm' | 'cjs') => `${
  kind === 'esm'
    ? `import express from 'express';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { createVerifier } from 'mcp-authz/verifier';`
    : `const express = require('express');
const { requireBearerAuth } = require('@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js');
const { createVerifier } = require('mcp-authz/verifier');`
}
const [issuer, fakeIssuer, resource] = process.argv.slice(2);
const verifier = createVerifier({ issuer, resource });
const expiring = createVerifier({ issuer: fakeIssuer, resource });
const down = createVerifier({ issuer: 'http://127.0.0.1:9', resource, revocation: { onError() {} } });
const app = express();
const echo = (req, res) => res.json({ clientId: req.auth.clientId });
const metadata = { resourceMetadataUrl: verifier.metadataUrl };
app.get('/read', requireBearerAuth({ verifier, ...metadata }), echo);
app.get('/write', requireBearerAuth({ verifier, requiredScopes: ['notes:write'], ...metadata }), echo);
app.get('/expiring', requireBearerAuth({ verifier: expiring, ...metadata }), echo);
app.get('/down', requireBearerAuth({ verifier: down, ...metadata }), echo);
Promise.all([verifier.ready(), expiring.ready()]).then(() => {
  const server = app.listen(0, '127.0.0.1', () => console.log('http://127.0.0.1:' + server.address().port));
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close();
    for (const v of [verifier, expiring, down]) v.close();
  });
});
`;

describe('the oldest SDK the peer range allows, with mcp-authz/verifier as installed', () => {
  let dir: string;
  let app: string;
  let t: TestServer;
  let fake: FakeAs;
  let stranger: FakeAs;
  const children: ChildProcess[] = [];

  before(async () => {
    t = await startServer({ store: 'sqlite' });
    fake = await startFakeAs();
    stranger = await startFakeAs();
    dir = mkdtempSync(join(tmpdir(), 'mcp-authz-sdk-'));
    const packed = execFileSync(npm, ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
    app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'an-mcp-server', version: '1.0.0', private: true }));
    execFileSync(npm, ['install', '--omit=optional', '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed), `@modelcontextprotocol/sdk@${oldestSdk()}`], {
      cwd: app,
      stdio: 'pipe',
      timeout: 150_000,
    });
    writeFileSync(join(app, 'server.mjs'), SERVER('esm'));
    writeFileSync(join(app, 'server.cjs'), SERVER('cjs'));
  }, { timeout: 180_000 });
  after(async () => {
    for (const child of children) {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
    await stranger?.stop();
    await fake?.stop();
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the installed SDK is the oldest allowed, and the verifier was installed without the server', () => {
    const sdk = JSON.parse(readFileSync(join(app, 'node_modules/@modelcontextprotocol/sdk/package.json'), 'utf8')) as { version: string };
    assert.equal(sdk.version, oldestSdk());
    assert.throws(() => readFileSync(join(app, 'node_modules/oidc-provider/package.json')), /ENOENT/);
  });

  for (const kind of ['esm', 'cjs'] as const) {
    it(`${kind === 'esm' ? 'an ES module' : 'a CommonJS'} server: 200, 401 with the challenge, 403, and no stack when the authorization server is down`, async () => {
      const child = spawn(process.execPath, [join(app, kind === 'esm' ? 'server.mjs' : 'server.cjs'), t.issuer, fake.issuer, NOTES], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const [chunk] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(() => assert.fail(`the server exited: ${stderr}`))])) as [Buffer];
      const base = chunk.toString().trim();
      const get = async (path: string, bearer?: string) => {
        const res = await fetch(`${base}${path}`, { headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` } });
        return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '', body: (await res.json()) as Record<string, unknown> };
      };
      const refused = async (path: string, bearer: string | undefined, what: string, description?: string) => {
        const answer = await get(path, bearer);
        assert.equal(answer.status, 401, what);
        assert.match(answer.challenge, /^Bearer error="invalid_token"/, what);
        assert.match(answer.challenge, /resource_metadata="https:\/\/notes\.example\.com\/\.well-known\/oauth-protected-resource\/mcp"/, what);
        if (description) assert.equal(answer.body.error_description, description, what);
      };

      const token = await clientCredentialsToken(t);
      assert.deepEqual((await get('/read', token)).body, { clientId: 'nightly-report' });
      await refused('/read', undefined, 'missing');
      await refused('/read', 'not-a-jwt', 'malformed', 'The access token is malformed');
      await refused('/read', await stranger.sign({ iss: t.issuer }), 'foreign key');
      await refused('/read', await stranger.sign(), 'foreign issuer');
      assert.equal((await get('/expiring', await fake.sign())).status, 200);
      await refused('/expiring', await fake.sign({ iat: now() - 600, exp: now() - 60 }), 'expired', 'The access token has expired');

      const scoped = await get('/write', token);
      assert.equal(scoped.status, 403);
      assert.match(scoped.challenge, /error="insufficient_scope"/);

      const revoked = await fetch(t.url('/token/revocation'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ token }),
      });
      assert.equal(revoked.status, 200);
      assert.ok((await eventually(async () => (await get('/read', token)).status === 401, PUSH_BOUND_MS)) < PUSH_BOUND_MS, 'refused, pushed on the feed');
      await refused('/read', token, 'revoked', 'The access token has been revoked');

      const down = await get('/down', await clientCredentialsToken(t));
      assert.equal(down.status, 500, "the SDK's fixed answer for ServerError");
      assert.deepEqual(down.body, { error: 'server_error', error_description: 'Access token verification is temporarily unavailable' });
      assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    });
  }
});
