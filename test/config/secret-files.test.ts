/**
 * Secrets named by files in the configuration: `clients[].client_secret_file` (read when the
 * configuration is loaded), and the COOKIE_KEYS_FILE / SIGNING_KEYS_FILE variables. An error
 * names the field and the path, never the secret.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-config-secrets-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function file(text: string): string {
  const path = join(dir, `file-${++files}`);
  writeFileSync(path, text);
  return path;
}

const RESOURCE = { uri: 'https://notes.example.com/mcp', name: 'Notes', scopes: { 'notes:read': { description: 'Read your notes' } } };
const machine = (extra: Record<string, unknown>) => ({
  resources: [RESOURCE],
  clients: [{ client_id: 'nightly', grant_types: ['client_credentials'], ...extra }],
});

function refused(input: unknown, ...patterns: RegExp[]): string {
  let message = '';
  assert.throws(
    () => parseConfig(input, 'test'),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      for (const pattern of patterns) assert.match(err.message, pattern);
      message = err.message;
      return true;
    },
  );
  return message;
}

test('client_secret_file: the secret is read from the file (a trailing newline and spaces dropped)', () => {
  const secret = 'a-mounted-client-secret-of-some-length';
  const config = parseConfig(machine({ client_secret_file: file(`${secret}\n`) }));
  assert.equal(config.clients[0]!.client_secret, secret);
  // and the authentication method follows from it, as with client_secret
  assert.doesNotThrow(() => parseConfig(machine({ client_secret_file: file(`  ${secret}  \n`), token_endpoint_auth_method: 'client_secret_post' })));
});

test('client_secret_file: a missing, empty or short file, or both settings, is refused by field, without the secret', () => {
  refused(machine({ client_secret_file: join(dir, 'absent') }), /clients\[0\]\.client_secret_file: cannot read .*absent \(ENOENT\)/);
  refused(machine({ client_secret_file: file('\n') }), /clients\[0\]\.client_secret_file: .* is empty/);
  const short = 'tooShortSecret';
  const message = refused(machine({ client_secret_file: file(short) }), /clients\[0\]\.client_secret_file: the secret in .* must be 16 to 512 characters/);
  assert.ok(!message.includes(short), 'the secret is not shown');
  refused(machine({ client_secret_file: file('x'.repeat(20)), client_secret: 'y'.repeat(20) }), /clients\[0\]\.client_secret_file: set client_secret or client_secret_file, not both/);
});

test('without a secret or a secret file, a confidential machine client is still refused as before', () => {
  refused(machine({ token_endpoint_auth_method: 'client_secret_basic' }), /clients\[0\]\.client_secret: required for token_endpoint_auth_method client_secret_basic/);
});

test('COOKIE_KEYS_FILE and SIGNING_KEYS_FILE set secrets.cookieKeysFile and keys.file; unset, neither is used', () => {
  const config = loadConfig({ env: { MCP_AUTHZ_DEMO: 'off', COOKIE_KEYS_FILE: '/run/secrets/cookie-keys', SIGNING_KEYS_FILE: '/run/secrets/jwks.json' } });
  assert.equal(config.secrets.cookieKeysFile, '/run/secrets/cookie-keys');
  assert.equal(config.keys.file, '/run/secrets/jwks.json');
  assert.equal(config.keys.reloadInterval, 30, 'the other keys settings keep their defaults');
  const plain = loadConfig({ env: { MCP_AUTHZ_DEMO: 'off' } });
  assert.equal(plain.secrets.cookieKeysFile, undefined);
  assert.equal(plain.keys.file, undefined);
});
