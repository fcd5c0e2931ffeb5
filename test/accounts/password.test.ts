import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { CURRENT_PARAMS, hashPassword, needsRehash, verifyPassword } from '../../src/accounts/password.js';

const ENCODED = /^scrypt\$ln=17,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/;

/** An encoded hash made directly with node's scrypt, with chosen parameters. */
function encodeWith(password: string, ln: number, r = 8, p = 1): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N: 2 ** ln, r, p, maxmem: 256 * 1024 * 1024 });
  return `scrypt$ln=${ln},r=${r},p=${p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

test('hash is self-describing: scrypt, current parameters, 16-byte salt, 32-byte key', async () => {
  assert.deepEqual(CURRENT_PARAMS, { ln: 17, r: 8, p: 1 });
  const encoded = await hashPassword('correct horse battery staple');
  assert.match(encoded, ENCODED);
  assert.ok(!encoded.includes('correct horse'));
});

test('round trip: the right password verifies, a wrong one does not', async () => {
  const encoded = await hashPassword('correct horse battery staple');
  assert.equal(await verifyPassword('correct horse battery staple', encoded), true);
  assert.equal(await verifyPassword('correct horse battery stapl', encoded), false);
  assert.equal(await verifyPassword('Correct horse battery staple', encoded), false);
  assert.equal(await verifyPassword('', encoded), false);
});

test('the same password hashes differently each time (random salt)', async () => {
  const [a, b] = await Promise.all([hashPassword('same password'), hashPassword('same password')]);
  assert.notEqual(a, b);
  assert.equal(await verifyPassword('same password', a), true);
  assert.equal(await verifyPassword('same password', b), true);
});

test('passwords are compared in Unicode NFC form', async () => {
  const composed = 'caf\u00e9-password';
  const decomposed = 'cafe\u0301-password';
  const encoded = await hashPassword(composed);
  assert.equal(await verifyPassword(decomposed, encoded), true);
});

test('hashes made with other (sane) parameters still verify and need a rehash', async () => {
  const old = encodeWith('an older password', 14);
  assert.equal(await verifyPassword('an older password', old), true);
  assert.equal(await verifyPassword('another password', old), false);
  assert.equal(needsRehash(old), true);
  assert.equal(needsRehash(await hashPassword('fresh password')), false);
});

test('tampered, garbage or absurd encoded strings are a mismatch, never a throw', async () => {
  const good = await hashPassword('the password');
  const [, params, salt, hash] = good.split('$') as [string, string, string, string];
  const flipped = (hash[0] === 'A' ? 'B' : 'A') + hash.slice(1);
  const cases: Record<string, string> = {
    empty: '',
    'plain text': 'the password',
    'other algorithm': good.replace(/^scrypt/, 'bcrypt'),
    'hash altered': `scrypt$${params}$${salt}$${flipped}`,
    'salt altered': `scrypt$${params}$${(salt[0] === 'A' ? 'B' : 'A') + salt.slice(1)}$${hash}`,
    'parameters altered': `scrypt$ln=14,r=8,p=1$${salt}$${hash}`,
    'huge cost (memory DoS)': `scrypt$ln=30,r=8,p=1$${salt}$${hash}`,
    'cost just over the limit': `scrypt$ln=18,r=8,p=1$${salt}$${hash}`,
    'huge block size': `scrypt$ln=15,r=99,p=1$${salt}$${hash}`,
    'zero parallelism': `scrypt$ln=15,r=8,p=0$${salt}$${hash}`,
    'huge parallelism': `scrypt$ln=15,r=8,p=99$${salt}$${hash}`,
    'negative cost': `scrypt$ln=-1,r=8,p=1$${salt}$${hash}`,
    'missing hash': `scrypt$${params}$${salt}`,
    'empty salt': `scrypt$${params}$$${hash}`,
    'extra field': `${good}$extra`,
    'not base64url': `scrypt$${params}$${salt}$${hash.slice(0, -1)}+`,
    'padded base64': `scrypt$${params}$${salt}==$${hash}`,
    'short hash': `scrypt$${params}$${salt}$${hash.slice(0, 8)}`,
    'reordered parameters': `scrypt$r=8,ln=15,p=1$${salt}$${hash}`,
    'trailing newline': `${good}\n`,
  };
  // what one real check costs on this machine now: a record that ran its absurd parameters (2^30
  // iterations, 99 lanes) would take minutes, so ten of these leave room for a busy machine
  let started = performance.now();
  await verifyPassword('the password', good);
  const bound = 10 * (performance.now() - started) + 1000;
  for (const [name, encoded] of Object.entries(cases)) {
    started = performance.now();
    assert.equal(await verifyPassword('the password', encoded), false, name);
    assert.ok(performance.now() - started < bound, `${name}: took too long`);
    // a well-formed record with current parameters but the wrong bytes is not "old"
    if (!name.endsWith(' altered') || name === 'parameters altered') assert.equal(needsRehash(encoded), true, name);
  }
  assert.equal(await verifyPassword('the password', undefined as unknown as string), false);
  assert.equal(await verifyPassword('the password', good), true, 'the untouched hash still verifies');
});
