/**
 * Sealing at rest (src/keys/seal.ts): what is sealed under the newest cookie key opens after a
 * rotation (a new key first, the old one kept) and no longer once the old key is dropped; a
 * sealed value opens only in its own context, and not once altered; the sealed text holds
 * nothing of the plain text.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Sealer } from '../../src/keys/seal.js';

const OLD = 'an-old-cookie-key-long-enough-for-the-schema-43';
const NEW = 'a-new-cookie-key-long-enough-for-the-schema-430';
const LABEL = 'test/label';
const SECRET = 'an-upstream-refresh-token-value';

describe('sealing at rest', () => {
  test('opens after a rotation (new key first, old kept), not once the old key is dropped', () => {
    const sealed = new Sealer([OLD], LABEL).seal(SECRET, 'corp:acct');
    assert.ok(!sealed.includes(SECRET));
    assert.ok(!Buffer.from(sealed.split('.')[2]!, 'base64url').toString('latin1').includes(SECRET), 'the ciphertext is not the plain text');
    assert.equal(new Sealer([OLD], LABEL).open(sealed, 'corp:acct'), SECRET);
    assert.equal(new Sealer([NEW, OLD], LABEL).open(sealed, 'corp:acct'), SECRET);
    assert.equal(new Sealer([NEW], LABEL).open(sealed, 'corp:acct'), undefined);
    assert.equal(new Sealer([NEW, OLD], LABEL).open(new Sealer([NEW, OLD], LABEL).seal(SECRET, 'c'), 'c'), SECRET, 'sealed with the newest');
    assert.equal(new Sealer([NEW], LABEL).open(new Sealer([NEW, OLD], LABEL).seal(SECRET, 'c'), 'c'), SECRET);
  });

  test('opens only in its own context and label, and not once altered', () => {
    const sealer = new Sealer([OLD], LABEL);
    const sealed = sealer.seal(SECRET, 'corp:acct');
    assert.equal(sealer.open(sealed, 'corp:other'), undefined, 'another account');
    assert.equal(new Sealer([OLD], 'another/label').open(sealed, 'corp:acct'), undefined, 'a key of another label');
    const parts = sealed.split('.');
    const body = Buffer.from(parts[2]!, 'base64url');
    body[0]! ^= 1;
    assert.equal(sealer.open([parts[0], parts[1], body.toString('base64url'), parts[3]].join('.'), 'corp:acct'), undefined, 'altered');
    assert.equal(sealer.open('not sealed', 'corp:acct'), undefined);
  });
});
