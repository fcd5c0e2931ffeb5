/**
 * Secrets mounted as files (Kubernetes Secrets, Docker secrets) instead of kept in the store:
 *   - cookie keys, `secrets.cookieKeysFile` (env `COOKIE_KEYS_FILE`): one key per line, the
 *     first signs and every line verifies; the CSRF key of our forms is derived from the first;
 *   - signing keys, `keys.file` (env `SIGNING_KEYS_FILE`): a JWKS of private keys; the first
 *     key of each algorithm signs, later ones are published for verification only;
 *   - client secrets, `clients[].client_secret_file` (read by the config schema).
 * A file that cannot be used stops start-up with a {@link ConfigError} naming the setting,
 * the path and what is wrong, never the file's content.
 */
import { readFileSync } from 'node:fs';
import { hkdfSync, type JsonWebKey as NodeJwk } from 'node:crypto';
import type { JWK } from 'jose';
import { ConfigError } from '../config/errors.js';
import { isUsableKeyPair, SIGNING_ALGS, type SigningAlg } from './signing-keys.js';
import type { ServerSecrets } from './secrets.js';

/** Shortest cookie key accepted from a file (characters): 32 random bytes base64url are 43. */
export const MIN_COOKIE_KEY_LENGTH = 32;

export const COOKIE_KEYS_SETTING = 'secrets.cookieKeysFile (env COOKIE_KEYS_FILE)';
export const SIGNING_KEYS_SETTING_NAME = 'keys.file (env SIGNING_KEYS_FILE)';

/** The key type and curve each signing algorithm needs. */
const KEY_TYPES: Record<SigningAlg, { kty: string; crv?: string }> = { ES256: { kty: 'EC', crv: 'P-256' }, RS256: { kty: 'RSA' } };

/**
 * The text of a secret file, or a reason it has none. The reason is safe to show: it says
 * why the file cannot be read (the error code), never what is in it.
 */
export function readSecretText(path: string): { text: string } | { problem: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { problem: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})` };
  }
  if (text.trim() === '') return { problem: `${path} is empty` };
  return { text };
}

function fail(setting: string, message: string): never {
  throw new ConfigError(`invalid configuration:\n  ${setting}: ${message}`);
}

/** Cookie keys (newest first) and the CSRF key derived from the first. */
export function readCookieKeysFile(path: string): ServerSecrets {
  const read = readSecretText(path);
  if ('problem' in read) fail(COOKIE_KEYS_SETTING, read.problem);
  const keys: string[] = [];
  read.text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (line.length < MIN_COOKIE_KEY_LENGTH) fail(COOKIE_KEYS_SETTING, `line ${i + 1} of ${path} is shorter than ${MIN_COOKIE_KEY_LENGTH} characters`);
    keys.push(line);
  });
  if (keys.length === 0) fail(COOKIE_KEYS_SETTING, `${path} holds no key (one per line)`);
  // forms carry HMACs under this key: it must be the same on every replica, like the cookie keys
  const csrfKey = Buffer.from(hkdfSync('sha256', keys[0]!, 'mcp-authz', 'csrf-key', 32));
  return { cookieKeys: keys, csrfKey };
}

/**
 * The JWKS the provider runs with, from a file of private keys: for each algorithm the
 * first key signs and later ones only verify (what a rotation by hand needs: publish the
 * new key last, later move it first, finally drop the old one).
 */
export function readSigningKeysFile(path: string): { keys: JWK[] } {
  const read = readSecretText(path);
  if ('problem' in read) fail(SIGNING_KEYS_SETTING_NAME, read.problem);
  let json: unknown;
  try {
    json = JSON.parse(read.text);
  } catch {
    fail(SIGNING_KEYS_SETTING_NAME, `${path} is not valid JSON (a JWKS: {"keys": [...]})`);
  }
  const list = (json as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list) || list.length === 0) fail(SIGNING_KEYS_SETTING_NAME, `${path} is not a JWKS with at least one key ({"keys": [...]})`);
  const kids = new Set<string>();
  const keys = list.map((entry: unknown, i): JWK => {
    const key = (entry && typeof entry === 'object' ? entry : {}) as Record<string, unknown>;
    const kid = typeof key.kid === 'string' && key.kid.length > 0 ? key.kid : undefined;
    const where = kid === undefined ? `keys[${i}]` : `keys[${i}] (kid "${kid}")`;
    if (kid === undefined) fail(SIGNING_KEYS_SETTING_NAME, `${where} has no "kid"`);
    if (kids.has(kid)) fail(SIGNING_KEYS_SETTING_NAME, `${where}: the kid is used twice`);
    kids.add(kid);
    if (!SIGNING_ALGS.includes(key.alg as SigningAlg)) fail(SIGNING_KEYS_SETTING_NAME, `${where}: "alg" must be one of ${SIGNING_ALGS.join(', ')}`);
    const alg = key.alg as SigningAlg;
    const type = KEY_TYPES[alg];
    if (key.kty !== type.kty || (type.crv !== undefined && key.crv !== type.crv)) {
      fail(SIGNING_KEYS_SETTING_NAME, `${where}: ${alg} needs a ${type.kty}${type.crv ? ` ${type.crv}` : ''} key`);
    }
    if (typeof key.d !== 'string') fail(SIGNING_KEYS_SETTING_NAME, `${where} is not a private key (no "d")`);
    if (!isUsableKeyPair(key as NodeJwk)) fail(SIGNING_KEYS_SETTING_NAME, `${where} is not a usable private key`);
    const { key_ops: _ops, use: _use, ...rest } = key;
    return { ...rest, use: 'sig' } as JWK;
  });
  for (const alg of SIGNING_ALGS) {
    if (!keys.some((k) => k.alg === alg)) {
      fail(SIGNING_KEYS_SETTING_NAME, `${path} has no ${alg} key (ES256 signs access tokens, RS256 ID tokens: one of each is needed)`);
    }
  }
  const signing = SIGNING_ALGS.map((alg) => keys.find((k) => k.alg === alg)!);
  const verifyOnly = keys.filter((k) => !signing.includes(k)).map((k) => ({ ...k, key_ops: ['verify'] }));
  return { keys: [...signing, ...verifyOnly] };
}
