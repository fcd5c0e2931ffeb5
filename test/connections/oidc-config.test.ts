/**
 * An OIDC connection's `privateKey` is checked at start: what is not a private JWK with a
 * `kid` and an asymmetric `alg` stops the start with a message naming the setting, never
 * the value. A good one is accepted without the upstream being asked (discovery waits for the
 * first sign-in).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { parseConfig } from '../../src/config/load.js';
import { createServer } from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { fixtureConfig } from '../helpers/fixtures.js';

const dirs: string[] = [];

function start(privateKey: string) {
  const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-oidc-config-'));
  dirs.push(dataDir);
  const config = parseConfig({
    ...fixtureConfig(),
    issuer: 'http://127.0.0.1:9',
    dataDir,
    logLevel: 'error',
    // nothing listens on port 1: the upstream is not asked at start
    connections: [{ kind: 'oidc', id: 'corp', name: 'Corp', issuer: 'http://127.0.0.1:1', clientId: 'us', privateKey }],
  });
  return createServer(config, { logger: createLogger('error') });
}

describe('an OIDC connection’s private key, at start', { timeout: 60_000 }, () => {
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('not a private JWK with kid and an asymmetric alg: the start stops, naming the setting, not the value', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const secretJwk = { ...(await exportJWK(privateKey)), kid: 'k1', alg: 'ES256' };
    const cases = [
      'not JSON at all: sekrit-value-1234',
      JSON.stringify({ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }),
      JSON.stringify({ ...secretJwk, kid: undefined }),
      JSON.stringify({ kty: 'oct', k: 'c2Vrcml0LXZhbHVlLTEyMzQ', d: 'x', kid: 'k1', alg: 'HS256' }),
      JSON.stringify([secretJwk]),
    ];
    for (const value of cases) {
      await assert.rejects(start(value), (err: Error) => {
        assert.match(err.message, /^connections\[corp\]\.privateKey: /);
        assert.ok(!err.message.includes('sekrit') && !err.message.includes(String(secretJwk.d)) && !err.message.includes('c2Vrcml0'), err.message);
        return true;
      });
    }
  });

  test('a private JWK with kid and alg: the server starts, though the upstream cannot be reached', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const server = await start(JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'k1', alg: 'ES256' }));
    await server.close();
  });
});
