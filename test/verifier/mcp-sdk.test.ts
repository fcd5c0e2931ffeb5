/**
 * `mcp-authz/verifier/mcp-sdk`: the SDK's requireBearerAuth({ verifier }) with no wrapping
 * answers 200 / 401 invalid_token / 403 insufficient_scope, never 500.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { createVerifier } from '../../src/verifier/mcp-sdk.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { clientCredentialsToken, NOTES } from './support.js';

describe('mcp-authz/verifier/mcp-sdk with the SDK requireBearerAuth, unchanged', () => {
  let t: TestServer;
  let http: Server;
  let base: string;
  let verifier: ReturnType<typeof createVerifier>;
  before(async () => {
    t = await startServer({ store: 'sqlite' });
    verifier = createVerifier({ issuer: t.issuer, resource: NOTES });
    const app = express();
    const echo = (req: express.Request, res: express.Response) => res.json({ clientId: req.auth?.clientId, scopes: req.auth?.scopes });
    app.get('/read', requireBearerAuth({ verifier, resourceMetadataUrl: verifier.metadataUrl }), echo);
    app.get('/write', requireBearerAuth({ verifier, requiredScopes: ['notes:write'], resourceMetadataUrl: verifier.metadataUrl }), echo);
    http = createServer(app);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  after(async () => {
    await verifier.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await t.stop();
  });
  const get = (path: string, bearer: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${bearer}` } });

  it('a good token → 200 with req.auth', async () => {
    const res = await get('/read', await clientCredentialsToken(t));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { clientId: 'nightly-report', scopes: ['notes:read'] });
  });

  it('a forged or tampered token → 401 invalid_token', async () => {
    const token = await clientCredentialsToken(t);
    const [h, p, s] = token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), scope: 'notes:write' })).toString('base64url')}.${s}`;
    for (const bad of [tampered, 'not-a-jwt']) {
      const res = await get('/read', bad);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
  });

  it('a missing scope → 403 insufficient_scope', async () => {
    const res = await get('/write', await clientCredentialsToken(t));
    assert.equal(res.status, 403);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
  });
});
