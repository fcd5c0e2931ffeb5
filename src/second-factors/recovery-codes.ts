/**
 * Recovery codes: ten random codes shown once when made, kept only as SHA-256 hashes. A code
 * stands in for the second factor once and is then removed. 12 characters from an alphabet
 * without look-alikes (about 60 bits each), shown as three groups of four.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';

export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const LENGTH = 12;

/** Lowercase, separators and spaces dropped. */
function normalize(input: string): string {
  return input.toLowerCase().replace(/[\s-]/g, '');
}

export function hashRecoveryCode(code: string): string {
  return createHash('sha256').update(normalize(code), 'utf8').digest('hex');
}

/** New codes (to show once) and their hashes (to store). */
export function newRecoveryCodes(): { codes: string[]; hashes: string[] } {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    let raw = '';
    for (let i = 0; i < LENGTH; i++) raw += ALPHABET[randomInt(ALPHABET.length)];
    return `${raw.slice(0, 4)}-${raw.slice(4, 8)}-${raw.slice(8)}`;
  });
  return { codes, hashes: codes.map(hashRecoveryCode) };
}

/** Whether `input` could be a recovery code (rather than a 6-digit TOTP code). */
export function looksLikeRecoveryCode(input: string): boolean {
  const code = normalize(input);
  return code.length === LENGTH && [...code].every((c) => ALPHABET.includes(c));
}

/** The index of the stored hash `input` matches, compared in constant time; -1 when none. */
export function matchRecoveryCode(hashes: readonly string[], input: string): number {
  if (!looksLikeRecoveryCode(input)) return -1;
  const given = Buffer.from(hashRecoveryCode(input), 'hex');
  let found = -1;
  hashes.forEach((hash, i) => {
    if (timingSafeEqual(Buffer.from(hash, 'hex'), given) && found === -1) found = i;
  });
  return found;
}
