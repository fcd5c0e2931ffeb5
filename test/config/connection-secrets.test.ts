/**
 * Connection secrets given as `{ file }` or `{ env }` (src/config/sign-in.ts `secretSchema`),
 * loaded from a configuration file as at start, reach the drivers built from it: an OIDC client
 * secret and a private_key_jwt key, a SAML request-signing key and certificate, an LDAP bind
 * password — each the file's text without its final newline, or the variable's value.
 * (A missing file or variable is refused: test/connections/provision.test.ts.)
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { LdapConnectionConfig, OidcConnectionConfig, SamlConnectionConfig } from '../../src/config/sign-in.js';
import { ConnectionRegistry } from '../../src/connections/registry.js';
import { parsePrivateJwk } from '../../src/connections/oidc/upstream-client.js';
import { samlOptions } from '../../src/connections/saml/options.js';
import { samlUrls } from '../../src/connections/saml/urls.js';
import { createLogger } from '../../src/observability/logger.js';
import { makeSigningKey } from '../helpers/saml-idp.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-connection-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test('secrets from { file } and { env } reach the OIDC, SAML and LDAP drivers, trimmed', () => {
  const clientSecret = 'oidc-client-secret-from-a-mounted-file';
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid: 'key-1', alg: 'ES256' });
  const signing = makeSigningKey('mcp-authz SP');
  const idp = makeSigningKey('the IdP');
  const bindPassword = 'ldap-bind-password-from-a-file';
  process.env.MCP_AUTHZ_TEST_IDP_CERT = `${idp.cert}\n`;
  try {
    const connections = [
      { kind: 'oidc', id: 'secret', name: 'OIDC with a secret', issuer: 'https://login.corp.example', clientId: 'a', clientSecret: { file: file('client-secret', `${clientSecret}\n`) } },
      { kind: 'oidc', id: 'jwt', name: 'OIDC with a key', issuer: 'https://login.corp.example', clientId: 'b', privateKey: { file: file('jwk.json', `${jwk}\n`) } },
      {
        kind: 'saml',
        id: 'sso',
        name: 'SAML',
        entryPoint: 'https://idp.corp.example/sso',
        idpIssuer: 'https://idp.corp.example',
        idpCert: { env: 'MCP_AUTHZ_TEST_IDP_CERT' },
        signRequests: { privateKey: { file: file('sp-key.pem', signing.key) }, cert: { file: file('sp-cert.pem', signing.cert) } },
      },
      { kind: 'ldap', id: 'dir', name: 'Directory', url: 'ldaps://dc1.corp.example', bindDn: 'cn=reader', bindPassword: { file: file('bind-password', `${bindPassword}\n\n`) }, userBase: 'dc=corp' },
    ];
    const config = loadConfig({ configPath: file('config.json', JSON.stringify({ issuer: 'https://auth.example.com', connections })), env: { MCP_AUTHZ_DEMO: 'off' } });
    const registry = new ConnectionRegistry(config, { config, store: {} as never, log: createLogger('error'), audit: {} as never, basePath: '', limits: {} as never, render: {} as never, cookieKeys: ['a-cookie-key-for-tests-that-is-long-enough-43'] });
    const driverConfig = <T>(id: string) => registry.get(id)!.config as T;

    assert.equal(driverConfig<OidcConnectionConfig>('secret').clientSecret, clientSecret);
    const key = driverConfig<OidcConnectionConfig>('jwt').privateKey!;
    assert.equal(key, jwk);
    assert.deepEqual([parsePrivateJwk('jwt', key).kid, parsePrivateJwk('jwt', key).alg], ['key-1', 'ES256']);

    const saml = driverConfig<SamlConnectionConfig>('sso');
    assert.deepEqual(saml.idpCert, [idp.cert.trim()]);
    const options = samlOptions(saml, samlUrls(saml, config.issuer), 60, {} as never);
    assert.equal(options.privateKey, signing.key.trim());
    assert.equal(options.publicCert, signing.cert.trim());

    assert.equal(driverConfig<LdapConnectionConfig>('dir').bindPassword, bindPassword);
  } finally {
    delete process.env.MCP_AUTHZ_TEST_IDP_CERT;
  }
});
