/**
 * Secrets from mounted files (Kubernetes Secrets, Docker secrets): cookie keys
 * (`secrets.cookieKeysFile` / COOKIE_KEYS_FILE), signing keys (`keys.file` /
 * SIGNING_KEYS_FILE). A bad file is a configuration error naming the setting, never the
 * secret; with files the server keeps neither in the store, and two servers on two
 * different stores given the same files sign and verify alike.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import { ConfigError } from '../../src/config/load.js';
import { readCookieKeysFile, readSigningKeysFile } from '../../src/keys/secret-files.js';
import { SIGNING_KEYS_SETTING } from '../../src/keys/signing-keys.js';
import { SECRETS_SETTING } from '../../src/keys/secrets.js';
import { startServer } from '../helpers/server.js';
import { NOTES } from '../helpers/fixtures.js';
import { serviceToken } from '../helpers/flows.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-secret-files-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function file(text: string): string {
  const path = join(dir, `secret-${++files}`);
  writeFileSync(path, text);
  return path;
}

async function privateJwk(alg: 'ES256' | 'RS256', kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg };
}

/** Asserts a ConfigError naming `setting` and matching `pattern`, that leaks none of `secrets`. */
function refused(run: () => unknown, setting: RegExp, pattern: RegExp, secrets: string[] = []): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.match(err.message, setting);
    assert.match(err.message, pattern);
    for (const secret of secrets) assert.ok(!err.message.includes(secret), 'the message shows no secret');
    return true;
  });
}


describe('cookie keys file', () => {
  const a = randomBytes(32).toString('base64url');
  const b = randomBytes(32).toString('base64url');

  it('one key per line, first signs; comments and blank lines ignored; the CSRF key follows the first key', () => {
    const secrets = readCookieKeysFile(file(`# rotated 2026-12\n${a}\n\n  ${b}  \n`));
    assert.deepEqual(secrets.cookieKeys, [a, b]);
    assert.equal(secrets.csrfKey.length, 32);
    assert.deepEqual(readCookieKeysFile(file(`${a}\n`)).csrfKey, secrets.csrfKey, 'same first key, same CSRF key (replicas agree)');
    assert.notDeepEqual(readCookieKeysFile(file(`${b}\n${a}\n`)).csrfKey, secrets.csrfKey);
  });

  it('refuses a missing, empty or keyless file, and a key shorter than 32 characters, without showing it', () => {
    refused(() => readCookieKeysFile(join(dir, 'absent')), /secrets\.cookieKeysFile \(env COOKIE_KEYS_FILE\)/, /cannot read .*absent \(ENOENT\)/);
    refused(() => readCookieKeysFile(file('\n\n')), /COOKIE_KEYS_FILE/, /is empty/);
    refused(() => readCookieKeysFile(file('# only a comment\n')), /COOKIE_KEYS_FILE/, /holds no key/);
    const short = 'short-but-secret-value';
    refused(() => readCookieKeysFile(file(`${a}\n${short}\n`)), /COOKIE_KEYS_FILE/, /line 2 .* shorter than 32 characters/, [short]);
  });
});

describe('signing keys file', () => {
  let es: JWK;
  let rs: JWK;
  let es2: JWK;
  before(async () => {
    [es, rs, es2] = await Promise.all([privateJwk('ES256', 'es-1'), privateJwk('RS256', 'rs-1'), privateJwk('ES256', 'es-2')]);
  });
  const jwks = (...keys: unknown[]) => file(JSON.stringify({ keys }));
  const setting = /keys\.file \(env SIGNING_KEYS_FILE\)/;

  it('the first key of each algorithm signs; later ones are published for verification only', () => {
    const { keys } = readSigningKeysFile(jwks(es, rs, es2));
    assert.deepEqual(
      keys.map((k) => [k.kid, k.key_ops ?? 'signs']),
      [
        ['es-1', 'signs'],
        ['rs-1', 'signs'],
        ['es-2', ['verify']],
      ],
    );
    assert.ok(keys.every((k) => k.use === 'sig' && typeof k.d === 'string'));
  });

  it('refuses what cannot sign, naming the key by index and kid, never showing key material', () => {
    const { d: _d, ...publicOnly } = es;
    refused(() => readSigningKeysFile(join(dir, 'absent.json')), setting, /cannot read .*absent\.json \(ENOENT\)/);
    refused(() => readSigningKeysFile(file('{not json')), setting, /is not valid JSON/);
    refused(() => readSigningKeysFile(jwks()), setting, /at least one key/);
    refused(() => readSigningKeysFile(jwks(publicOnly, rs)), setting, /keys\[0\] \(kid "es-1"\) is not a private key/);
    refused(() => readSigningKeysFile(jwks({ ...es, kid: undefined }, rs)), setting, /keys\[0\] has no "kid"/, [es.d!]);
    refused(() => readSigningKeysFile(jwks(es, { ...es2, kid: 'es-1' }, rs)), setting, /keys\[1\] .* the kid is used twice/);
    refused(() => readSigningKeysFile(jwks({ ...es, alg: 'HS256' }, rs)), setting, /"alg" must be one of ES256, RS256/, [es.d!]);
    refused(() => readSigningKeysFile(jwks({ ...rs, alg: 'ES256' }, rs)), setting, /ES256 needs a EC P-256 key/, [rs.d!]);
    refused(() => readSigningKeysFile(jwks(es)), setting, /has no RS256 key/);
    const broken = { ...es, d: Buffer.alloc(32, 7).toString('base64url') };
    refused(() => readSigningKeysFile(jwks(broken, rs)), setting, /keys\[0\] \(kid "es-1"\) is not a usable private key/, [broken.d]);
  });
});

describe('servers on secret files', () => {
  let keysFile: string;
  let cookieFile: string;
  const cookieKey = randomBytes(32).toString('base64url');
  let es: JWK;
  let rs: JWK;
  before(async () => {
    [es, rs] = await Promise.all([privateJwk('ES256', 'file-es'), privateJwk('RS256', 'file-rs')]);
    keysFile = file(JSON.stringify({ keys: [es, rs] }));
    cookieFile = file(`${cookieKey}\n`);
  });

  it('two servers on two stores sign with the file keys and accept each other’s tokens; the stores hold no secret', async () => {
    const config = { keys: { file: keysFile, reloadInterval: 30, activationDelay: 60 }, secrets: { cookieKeysFile: cookieFile } };
    const [a, b] = await Promise.all([startServer({ store: 'sqlite', config }), startServer({ store: 'sqlite', config })]);
    try {
      const token = await serviceToken(a);
      const { protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(`${b.issuer}/jwks`)), { audience: NOTES, typ: 'at+jwt' });
      assert.equal(protectedHeader.kid, 'file-es');
      const published = ((await (await fetch(`${a.issuer}/jwks`)).json()) as { keys: Record<string, unknown>[] }).keys;
      assert.deepEqual(published.map((k) => k.kid).sort(), ['file-es', 'file-rs']);
      assert.ok(published.every((k) => k.d === undefined), 'no private part published');
      for (const t of [a, b]) {
        assert.deepEqual(t.server.app.keys, [cookieKey]);
        assert.equal(await t.server.store.settings.get(SIGNING_KEYS_SETTING), undefined, 'no keys created in the store');
        assert.equal(await t.server.store.settings.get(SECRETS_SETTING), undefined, 'no cookie secrets created in the store');
      }

      // a rotation by hand: a new key added last is published, then moved first it signs
      const next = await privateJwk('ES256', 'file-es-next');
      writeFileSync(keysFile, JSON.stringify({ keys: [es, rs, next] }));
      assert.equal(await a.server.holder.refresh(), true, 'what the reload timer does every keys.reloadInterval');
      const kids = ((await (await fetch(`${a.issuer}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
      assert.deepEqual(kids, ['file-es', 'file-es-next', 'file-rs']);
      assert.equal((await jwtVerify(await serviceToken(a), createRemoteJWKSet(new URL(`${a.issuer}/jwks`)))).protectedHeader.kid, 'file-es');
      writeFileSync(keysFile, JSON.stringify({ keys: [next, rs, es] }));
      await a.server.holder.refresh();
      assert.equal((await jwtVerify(await serviceToken(a), createRemoteJWKSet(new URL(`${a.issuer}/jwks`)))).protectedHeader.kid, 'file-es-next');
    } finally {
      writeFileSync(keysFile, JSON.stringify({ keys: [es, rs] }));
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('`serve` with a bad SIGNING_KEYS_FILE exits 78 naming the setting; `keys rotate` refuses, `keys list` shows the file', () => {
    const dataDir = mkdtempSync(join(dir, 'data-'));
    const env = { ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', MCP_AUTHZ_CONFIG: '', MCP_AUTHZ_DEMO: 'off', REDIS_URL: '', LOG_LEVEL: 'silent' };
    const bad = file(JSON.stringify({ keys: [{ ...es, d: undefined }, rs] }));
    const serve = spawnSync(process.execPath, ['dist/src/main.js', 'serve'], { env: { ...env, SIGNING_KEYS_FILE: bad }, encoding: 'utf8', timeout: 20_000 });
    assert.equal(serve.status, 78, serve.stderr);
    assert.match(serve.stderr, /keys\.file \(env SIGNING_KEYS_FILE\): keys\[0\] \(kid "file-es"\) is not a private key/);
    assert.doesNotMatch(serve.stderr, /\n\s+at /, 'no stack trace');

    const rotate = spawnSync(process.execPath, ['dist/src/main.js', 'keys', 'rotate'], { env: { ...env, SIGNING_KEYS_FILE: keysFile }, encoding: 'utf8', timeout: 20_000 });
    assert.equal(rotate.status, 2);
    assert.match(rotate.stderr, /come from keys\.file .* editing that file/);
    const list = spawnSync(process.execPath, ['dist/src/main.js', 'keys', 'list'], { env: { ...env, SIGNING_KEYS_FILE: keysFile }, encoding: 'utf8', timeout: 20_000 });
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /file-es\tES256\tsigning/);
    assert.match(list.stdout, /file-rs\tRS256\tsigning/);
  });
});
