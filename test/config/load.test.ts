import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { canonicalResourceUri } from '../../src/config/uri.js';
import { EXAMPLE_CONFIG_YAML } from '../../scripts/generate-config-docs.js';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-config-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** Writes `text` to a fresh file in the temp dir and returns its path. */
function file(text: string, ext = 'yaml'): string {
  const path = join(dir, `config-${++files}.${ext}`);
  writeFileSync(path, text);
  return path;
}

/** Loads YAML text with no environment at all (unless given). */
function load(yaml: string, env: Record<string, string> = {}) {
  return loadConfig({ configPath: file(yaml), env });
}

/** Asserts that loading fails with a ConfigError whose message matches every pattern. */
function refused(run: () => unknown, ...patterns: RegExp[]): void {
  refusedAs('', run, ...patterns);
}

function refusedAs(label: string, run: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `${label}: expected a ConfigError, got ${String(err)}`);
    for (const pattern of patterns) assert.match(err.message, pattern, `${label}: ${err.message}`);
    return true;
  });
}

const RESOURCE = `
resources:
  - uri: https://notes.example.com/mcp
    name: Notes
    scopes:
      notes:read: { description: Read your notes }
      notes:write: { description: Write notes }
`;

test('the documented example loads, with defaults filled in', () => {
  const config = load(EXAMPLE_CONFIG_YAML);
  assert.equal(config.port, 4000);
  assert.equal(config.host, '0.0.0.0');
  assert.equal(config.issuer, 'http://localhost:4000');
  assert.equal(config.dataDir, './data');
  assert.equal(config.redisUrl, undefined);
  assert.equal(config.trustProxy, false);
  assert.equal(config.logLevel, 'info');
  assert.equal(config.ttl.authorizationCode, 60);
  assert.equal(config.keys.activationDelay, 60);
  assert.equal(config.deviceFlow.mask, '****-****');
  const [notes] = config.resources;
  assert.equal(notes?.uri, 'https://notes.example.com/mcp');
  assert.equal(notes?.accessTokenTtl, 3600);
  assert.deepEqual(notes?.defaultScopes, ['notes:read']);
  assert.deepEqual(notes?.scopes['notes:read'], { description: 'Read your notes', dangerous: false, tools: [] });
  assert.deepEqual(notes?.scopes['notes:delete'], { description: 'Delete notes', dangerous: true, tools: [] });
  const [client] = config.clients;
  assert.equal(client?.client_id, 'nightly-report');
  assert.deepEqual(client?.grant_types, ['client_credentials']);
  assert.deepEqual(client?.redirect_uris, []);
  assert.deepEqual(client?.resources, ['https://notes.example.com/mcp']);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.resources[0]), 'the config is frozen');
});

test('canonicalising a resource URI twice changes nothing (ResourceRegistry.find looks canonical forms up as they are)', () => {
  const inputs = [
    'HTTPS://Notes.Example.com:443/mcp/',
    'https://files.example.com/',
    'https://files.example.com:8443',
    'http://127.0.0.1:3000/mcp',
    'https://ex.com/a/b/?q=1',
    'https://ex.com/?q',
    'https://ex.com/a%2Fb/./c/../d',
    'https://BÜCHER.example/mcp',
    'https://[::1]:443/x/',
    'https://ex.com/%7euser/ space',
    'https://ex.com/p?x=%zz&y= z',
  ];
  for (const input of inputs) {
    const once = canonicalResourceUri(input);
    assert.equal(canonicalResourceUri(once), once, input);
  }
});

test('resource URIs are canonicalised, in resources and in clients', () => {
  const config = load(`
resources:
  - uri: HTTPS://Notes.Example.com:443/mcp/
    name: Notes
    scopes: { notes:read: { description: Read } }
  - uri: https://Files.example.com/
    name: Files
    scopes: { files:read: { description: Read } }
clients:
  - client_id: cli
    client_secret: a-long-enough-secret-1234
    grant_types: [client_credentials]
    resources: [https://NOTES.example.com/mcp/, https://files.example.com:443]
`);
  assert.deepEqual(
    config.resources.map((r) => r.uri),
    ['https://notes.example.com/mcp', 'https://files.example.com'],
  );
  assert.deepEqual(config.clients[0]?.resources, ['https://notes.example.com/mcp', 'https://files.example.com']);
});

test('no file and MCP_AUTHZ_DEMO=off: every default, nothing configured', () => {
  const config = loadConfig({ env: { MCP_AUTHZ_DEMO: 'off' } });
  assert.equal(config.port, 4000);
  assert.equal(config.issuer, 'http://localhost:4000');
  assert.deepEqual(config.resources, []);
  assert.deepEqual(config.clients, []);
  assert.equal(config.demo, undefined);
});

test('no file: the demo, with the example Notes server as the resource and the demo host as a client', () => {
  const config = loadConfig({ env: {} });
  assert.deepEqual(config.demo, { mcpPort: 3001 });
  assert.deepEqual(
    config.resources.map((r) => [r.uri, Object.keys(r.scopes), r.scopes['notes:delete']?.dangerous]),
    [['http://localhost:3001/mcp', ['notes:read', 'notes:write', 'notes:delete', 'notes:share'], true]],
  );
  // the Notes server's own client (approvals and tool call reports), with a secret made at each start
  const notesServer = config.clients.find((c) => c.client_id === 'mcp-authz-demo-notes-server');
  assert.ok(notesServer?.client_secret && notesServer.client_secret.length >= 32);
  assert.deepEqual(config.resources[0]?.resourceServerClients, ['mcp-authz-demo-notes-server']);
  assert.notEqual(loadConfig({ env: {} }).clients.find((c) => c.client_id === 'mcp-authz-demo-notes-server')?.client_secret, notesServer.client_secret);
  const host = config.clients.find((c) => c.client_id === 'mcp-authz-demo-host');
  assert.deepEqual(host?.redirect_uris, ['http://localhost:4000/demo/callback']);
  assert.equal(config.registration.mode, 'open', 'MCP clients register themselves');
  // the environment still applies, and the demo follows it
  const moved = loadConfig({ env: { PORT: '4100', MCP_AUTHZ_DEMO_MCP_PORT: '3101' } });
  assert.equal(moved.resources[0]?.uri, 'http://localhost:3101/mcp');
  assert.deepEqual(moved.clients.find((c) => c.client_id === 'mcp-authz-demo-host')?.redirect_uris, ['http://localhost:4100/demo/callback']);
  refused(() => loadConfig({ env: { MCP_AUTHZ_DEMO: 'on' } }), /MCP_AUTHZ_DEMO: only "off" is understood/);
  refused(() => loadConfig({ env: { MCP_AUTHZ_DEMO_MCP_PORT: '70000' } }), /MCP_AUTHZ_DEMO_MCP_PORT: must be a port number from 1 to 65535/);
  refused(() => loadConfig({ env: { MCP_AUTHZ_DEMO_MCP_PORT: 'x' } }), /MCP_AUTHZ_DEMO_MCP_PORT: must be a port number/);
});

test('a config file never runs the demo, and cannot ask for it', () => {
  assert.equal(load(RESOURCE).demo, undefined);
  refused(() => load(`demo: { mcpPort: 3001 }\n${RESOURCE}`), /demo: the demo runs only without a config file/);
});

test('environment variables override the file', () => {
  const yaml = `port: 5000\nissuer: https://file.example.com\nlogLevel: warn\n${RESOURCE}`;
  const fromFile = load(yaml);
  assert.equal(fromFile.port, 5000);
  assert.equal(fromFile.issuer, 'https://file.example.com');
  const config = load(yaml, {
    PORT: '8080',
    HOST: '127.0.0.1',
    ISSUER: 'https://auth.example.com/',
    DATA_DIR: '/var/lib/mcp-authz',
    REDIS_URL: 'redis://cache:6379/0',
    LOG_LEVEL: 'debug',
    TRUST_PROXY: 'true',
  });
  assert.equal(config.port, 8080);
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.issuer, 'https://auth.example.com', 'a trailing slash is dropped');
  assert.equal(config.dataDir, '/var/lib/mcp-authz');
  assert.equal(config.redisUrl, 'redis://cache:6379/0');
  assert.equal(config.logLevel, 'debug');
  assert.equal(config.trustProxy, true);
  assert.equal(config.resources.length, 1, 'the rest of the file still applies');
  assert.equal(load(yaml, { TRUST_PROXY: '0' }).trustProxy, false);
  assert.equal(load(yaml, { PORT: '' }).port, 5000, 'an empty variable counts as unset');
});

test('the issuer defaults to http://localhost:$PORT, without a trailing slash', () => {
  assert.equal(loadConfig({ env: { PORT: '9123' } }).issuer, 'http://localhost:9123');
  assert.equal(loadConfig({ env: { ISSUER: 'http://localhost:9123/' } }).issuer, 'http://localhost:9123');
  assert.equal(loadConfig({ env: { ISSUER: 'https://auth.example.com/tenant/' } }).issuer, 'https://auth.example.com/tenant');
});

test('MCP_AUTHZ_CONFIG names the file; --config wins over it', () => {
  const a = file('port: 1111\n');
  const b = file('port: 2222\n');
  assert.equal(loadConfig({ env: { MCP_AUTHZ_CONFIG: a } }).port, 1111);
  assert.equal(loadConfig({ configPath: b, env: { MCP_AUTHZ_CONFIG: a } }).port, 2222);
});

test('a JSON file is read as JSON', () => {
  const config = loadConfig({ configPath: file(JSON.stringify({ port: 4321, resources: [] }), 'json'), env: {} });
  assert.equal(config.port, 4321);
  refused(() => loadConfig({ configPath: file('{ "port": 4321, }', 'json'), env: {} }), /is not valid JSON/);
});

test('each kind of bad input is a ConfigError naming the field and why', () => {
  const cases: [string, string, Record<string, string>, ...RegExp[]][] = [
    [
      'unknown key (typo)',
      `resources:\n  - uri: https://notes.example.com/mcp\n    name: Notes\n    scopess: { a: { description: A } }\n`,
      {},
      /resources\[0\]\.scopess: unknown key/,
    ],
    ['unknown top-level key', 'prot: 4000\n', {}, /^ {2}prot: unknown key$/m],
    [
      'scope name with a space',
      `resources:\n  - uri: https://notes.example.com/mcp\n    name: Notes\n    scopes: { "notes read": { description: A } }\n`,
      {},
      /resources\[0\]\.scopes\["notes read"\]: invalid key: a scope name is printable ASCII without spaces/,
    ],
    [
      'defaultScopes not declared',
      `${RESOURCE}    defaultScopes: [notes:admin]\n`,
      {},
      /resources\[0\]\.defaultScopes\[0\]: "notes:admin" is not one of this resource's scopes/,
    ],
    [
      'duplicate client_id',
      `${RESOURCE}clients:\n  - { client_id: dup, client_secret: a-long-enough-secret-1, grant_types: [client_credentials] }\n  - { client_id: dup, client_secret: a-long-enough-secret-2, grant_types: [client_credentials] }\n`,
      {},
      /clients\[1\]\.client_id: duplicate client_id "dup"/,
    ],
    [
      'secret method without a secret',
      `${RESOURCE}clients:\n  - { client_id: c, token_endpoint_auth_method: client_secret_post, grant_types: [client_credentials] }\n`,
      {},
      /clients\[0\]\.client_secret: required for token_endpoint_auth_method client_secret_post/,
    ],
    [
      'private_key_jwt without keys',
      `${RESOURCE}clients:\n  - { client_id: c, token_endpoint_auth_method: private_key_jwt, grant_types: [client_credentials] }\n`,
      {},
      /clients\[0\]\.jwks: private_key_jwt needs jwks or jwks_uri/,
    ],
    [
      'client resource not configured',
      `${RESOURCE}clients:\n  - { client_id: c, client_secret: a-long-enough-secret-1, grant_types: [client_credentials], resources: [https://files.example.com/mcp] }\n`,
      {},
      /clients\[0\]\.resources\[0\]: https:\/\/files\.example\.com\/mcp is not a configured resource/,
    ],
    [
      "client scope not in its resources",
      `${RESOURCE}clients:\n  - { client_id: c, client_secret: a-long-enough-secret-1, grant_types: [client_credentials], scope: "notes:read files:read" }\n`,
      {},
      /clients\[0\]\.scope: "files:read" is not a scope of this client's resources/,
    ],
    [
      'resource URI with userinfo',
      `resources:\n  - { uri: "https://user@notes.example.com/mcp", name: Notes, scopes: { a: { description: A } } }\n`,
      {},
      /resources\[0\]\.uri: must not contain userinfo/,
    ],
    [
      'allow names a client that is not configured',
      `resources:\n  - uri: https://notes.example.com/mcp\n    name: Notes\n    scopes: { notes:purge: { description: P, allow: ["client:nobody"] } }\n`,
      {},
      /resources\[0\]\.scopes\["notes:purge"\]\.allow\[0\]: "nobody" is not a configured client/,
    ],
    [
      'registered machine clients may not be offered a dangerous scope',
      `resources:\n  - uri: https://notes.example.com/mcp\n    name: Notes\n    scopes: { notes:read: { description: R }, notes:delete: { description: D, dangerous: true } }\nregistration:\n  clientCredentials: { scopes: [notes:read, notes:delete] }\n`,
      {},
      /registration\.clientCredentials\.scopes\[1\]: "notes:delete" is dangerous or restricted/,
    ],
    [
      'a machine ceiling naming an unknown scope',
      `${RESOURCE}cimd:\n  clientCredentials: [{ domain: agents.example.com, scopes: [files:read] }]\n`,
      {},
      /cimd\.clientCredentials\[0\]\.scopes\[0\]: "files:read" is not a scope of any resource/,
    ],
    ['a domain that is no domain name', 'cimd:\n  denyDomains: ["evil..example"]\n', {}, /cimd\.denyDomains\[0\]: a domain name such as example\.com/],
    ['http issuer on a non-loopback host', 'issuer: http://auth.example.com\n', {}, /issuer: must be https/],
    ['http issuer from the environment', '', { ISSUER: 'http://auth.example.com' }, /issuer: must be https/],
    ['PORT=abc', '', { PORT: 'abc' }, /port: Invalid input: expected number/],
    ['port out of range', 'port: 70000\n', {}, /port: Too big/],
    ['bad REDIS_URL', '', { REDIS_URL: 'http://cache' }, /redisUrl: must be a redis:\/\/ or rediss:\/\/ URL/],
    ['bad TRUST_PROXY', '', { TRUST_PROXY: 'yes please' }, /trustProxy: Invalid input: expected boolean/],
    ['malformed YAML', 'resources: [\n  - uri: {\n', {}, /config-\d+\.yaml is not valid YAML: /],
    ['top-level list', '- port: 4000\n', {}, /the top level must be a mapping of keys/],
    ['top-level scalar', 'just text\n', {}, /the top level must be a mapping of keys/],
  ];
  for (const [name, yaml, env, ...patterns] of cases) {
    refusedAs(name, () => load(yaml, env), /^invalid configuration|^config file /, ...patterns);
  }
});

test('CIMD domains are compared as host names are: any case, IDN, a trailing dot', () => {
  const config = load('cimd:\n  denyDomains: [EVIL.Example., bücher.example]\n  allowDomains: [agents.example.com]\n');
  assert.deepEqual(config.cimd.denyDomains, ['evil.example', 'xn--bcher-kva.example']);
});

test('a missing file is a ConfigError naming it', () => {
  const missing = join(dir, 'nope.yaml');
  refused(() => loadConfig({ configPath: missing, env: {} }), new RegExp(`cannot read config file ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT`));
});

test('parseConfig reports every problem at once', () => {
  refused(
    () => parseConfig({ port: 'x', logLevel: 'loud', bogus: 1 }),
    /port: /,
    /logLevel: /,
    /bogus: unknown key/,
  );
});

/** Runs the built CLI with no configuration variables from this environment. */
function runMain(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (/^REDIS_/.test(name)) delete env[name];
  for (const name of ['PORT', 'HOST', 'ISSUER', 'DATA_DIR', 'LOG_LEVEL', 'TRUST_PROXY', 'MCP_AUTHZ_CONFIG']) delete env[name];
  env.DATA_DIR = join(dir, 'data');
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [MAIN, ...args], { env, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: child.exitCode ?? (error ? 1 : 0), stdout, stderr });
    });
    child.stdin?.end();
  });
}

test('the CLI exits 78 on a bad config, naming the field, without a stack trace', async () => {
  const bad = file(`${RESOURCE}    defaultScopes: [notes:admin]\nport: 99999\n`);
  const { code, stdout, stderr } = await runMain(['--config', bad]);
  assert.equal(code, 78, stderr);
  assert.equal(stdout, '');
  assert.match(stderr, /^mcp-authz: invalid configuration/m);
  assert.match(stderr, /resources\[0\]\.defaultScopes\[0\]: "notes:admin" is not one of this resource's scopes/);
  assert.match(stderr, /port: Too big/);
  assert.doesNotMatch(stderr, /^ {4}at /m);
});

test('the CLI exits 78 on a missing or malformed file', async () => {
  const missing = await runMain(['--config', join(dir, 'missing.yaml')]);
  assert.equal(missing.code, 78, missing.stderr);
  assert.match(missing.stderr, /cannot read config file .*missing\.yaml: ENOENT/);
  const malformed = await runMain(['--config', file('a: [\n')]);
  assert.equal(malformed.code, 78, malformed.stderr);
  assert.match(malformed.stderr, /is not valid YAML/);
  assert.doesNotMatch(malformed.stderr, /^ {4}at /m);
});
