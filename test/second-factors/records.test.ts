/**
 * The stored second-factor record and the checks on its parts, without a server: a record
 * that does not parse reads as `broken` (never as "none"), what is written reads back, a
 * TOTP code works for one time step only once, a recovery code matches only itself.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hasFactor, readSecondFactors, writeSecondFactors } from '../../src/accounts/second-factors.js';
import { hashRecoveryCode, matchRecoveryCode, newRecoveryCodes } from '../../src/second-factors/recovery-codes.js';
import { checkTotp, newTotpSecret, totpCode } from '../../src/second-factors/totp.js';
import { acrFor, ACR_MFA, ACR_ONE_FACTOR, hasSecondFactorAmr, policyRequires, withSecondFactor } from '../../src/second-factors/policy.js';

describe('second-factor records', { timeout: 30_000 }, () => {
  test('absent or empty: no factor; unparsable or invalid: broken, never "none"', () => {
    for (const text of [undefined, '']) {
      const read = readSecondFactors({ secondFactors: text });
      assert.ok(read.state === 'ok' && !hasFactor(read.factors));
    }
    for (const text of ['{', 'null', '[]', '{"totp":{"secret":"lowercase"}}', '{"recoveryCodes":["not-a-hash"]}', '{"passkeys":[{"id":"x"}]}', '{"totp":{"secret":"JBSWY3DPEHPK3PXPJBSWY3DP","enrolledAt":-1}}']) {
      assert.equal(readSecondFactors({ secondFactors: text }).state, 'broken', text);
    }
  });

  test('what is written reads back; nothing left is written as empty', () => {
    const secret = newTotpSecret();
    const { hashes } = newRecoveryCodes();
    const factors = { totp: { secret, enrolledAt: 1, lastUsedStep: 7 }, passkeys: [], recoveryCodes: hashes };
    const read = readSecondFactors({ secondFactors: writeSecondFactors(factors) });
    assert.ok(read.state === 'ok');
    assert.deepEqual(read.factors, factors);
    assert.equal(writeSecondFactors({ passkeys: [], recoveryCodes: [] }), '');
    assert.ok(!hasFactor({ passkeys: [], recoveryCodes: hashes }), 'recovery codes alone are not a factor');
  });

  test('a TOTP code is accepted once per time step, and only its own secret', async () => {
    const secret = newTotpSecret();
    const code = await totpCode(secret);
    const step = await checkTotp(secret, code);
    assert.equal(typeof step, 'number');
    assert.equal(await checkTotp(secret, code, step), undefined, 'the same step again is refused');
    assert.equal(await checkTotp(newTotpSecret(), code), undefined);
    for (const bad of ['', '12345', '1234567', 'abcdef', '12 34 5x']) assert.equal(await checkTotp(secret, bad), undefined, bad);
    assert.equal(await checkTotp(secret, `${code.slice(0, 3)} ${code.slice(3)}`), step, 'a space typed in the middle is fine');
  });

  test('recovery codes: ten, distinct, matched case- and dash-insensitively, only against their own hash', () => {
    const { codes, hashes } = newRecoveryCodes();
    assert.equal(new Set(codes).size, 10);
    assert.equal(matchRecoveryCode(hashes, codes[4]!.toUpperCase().replace(/-/g, ' ')), 4);
    assert.equal(matchRecoveryCode(hashes, 'abcd-efgh-jkmn'), -1);
    assert.equal(matchRecoveryCode(hashes, '123456'), -1);
    assert.equal(hashRecoveryCode(codes[0]!), hashes[0]);
  });

  test('amr and acr: otp/hwk/mfa count as a second factor; policy by role, client and acr_values', () => {
    assert.equal(hasSecondFactorAmr(['pwd']), false);
    assert.equal(hasSecondFactorAmr(['pwd', 'otp']), true);
    assert.equal(hasSecondFactorAmr(['fed', 'mfa']), true);
    assert.equal(hasSecondFactorAmr('otp'), false);
    assert.deepEqual(withSecondFactor(['pwd'], 'hwk'), ['pwd', 'hwk', 'mfa']);
    assert.equal(acrFor(['pwd']), ACR_ONE_FACTOR);
    assert.equal(acrFor(['pwd', 'otp', 'mfa']), ACR_MFA);
    const policy = { requireForRoles: ['admin'], requireForClients: ['ops-console'], dangerousScopes: 'if-enrolled' as const, totpIssuer: 'x', passkeys: true };
    assert.equal(policyRequires(policy, { roles: ['admin'] }, { client_id: 'web-app' }), true);
    assert.equal(policyRequires(policy, { roles: [] }, { client_id: 'ops-console' }), true);
    assert.equal(policyRequires(policy, { roles: [] }, { client_id: 'web-app', acr_values: `${ACR_ONE_FACTOR} ${ACR_MFA}` }), true);
    assert.equal(policyRequires(policy, { roles: [] }, { client_id: 'web-app', acr_values: ACR_ONE_FACTOR }), false);
    assert.equal(policyRequires(policy, { roles: ['editor'] }, { client_id: 'web-app' }), false);
  });
});
