/**
 * An account's second factors, as the store keeps them (`AccountRecord.secondFactors`, JSON
 * text): a TOTP authenticator (its secret, when it was enrolled, and the last time step a code
 * was accepted for, so a code works once), passkeys (WebAuthn credentials: id, public key,
 * signature counter) and recovery codes (their SHA-256 hashes; a used one is removed).
 *
 * A record that does not parse is never read as "no second factor" (which would let a password
 * alone in) nor thrown at the person: it reads as `broken`, the caller logs it and shows a page
 * saying the account needs an administrator's attention.
 */
import { z } from 'zod';
import type { AccountRecord } from '../../adapters/contract.js';

const base64url = z.string().regex(/^[A-Za-z0-9_-]{1,2048}$/);

const totpSchema = z.object({
  /** base32, as authenticator apps take it */
  secret: z.string().regex(/^[A-Z2-7]{16,128}$/),
  /** epoch milliseconds */
  enrolledAt: z.number().int().nonnegative(),
  /** the time step of the last accepted code; a code of this step or an earlier one is refused */
  lastUsedStep: z.number().int().nonnegative().optional(),
});

const passkeySchema = z.object({
  /** the credential id, base64url */
  id: base64url,
  /** the COSE public key, base64url */
  publicKey: base64url,
  counter: z.number().int().nonnegative(),
  transports: z.array(z.string().max(32)).max(10),
  name: z.string().min(1).max(64),
  createdAt: z.number().int().nonnegative(),
});

export const secondFactorsSchema = z.object({
  totp: totpSchema.optional(),
  passkeys: z.array(passkeySchema).max(20).default([]),
  /** SHA-256 hex of each unused recovery code */
  recoveryCodes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(20).default([]),
});

export type SecondFactors = z.output<typeof secondFactorsSchema>;
export type Passkey = z.output<typeof passkeySchema>;

export type SecondFactorsRead = { state: 'ok'; factors: SecondFactors } | { state: 'broken' };

export const NO_FACTORS: SecondFactors = { passkeys: [], recoveryCodes: [] };

/** The account's second factors; `broken` when the stored text is not a valid record. */
export function readSecondFactors(account: Pick<AccountRecord, 'secondFactors'>): SecondFactorsRead {
  const text = account.secondFactors;
  if (text === undefined || text === '') return { state: 'ok', factors: { ...NO_FACTORS } };
  try {
    const parsed = secondFactorsSchema.safeParse(JSON.parse(text));
    return parsed.success ? { state: 'ok', factors: parsed.data } : { state: 'broken' };
  } catch {
    return { state: 'broken' };
  }
}

/** The text to store; '' (cleared) when nothing is left. */
export function writeSecondFactors(factors: SecondFactors): string {
  const kept = secondFactorsSchema.parse(factors);
  if (!kept.totp && kept.passkeys.length === 0 && kept.recoveryCodes.length === 0) return '';
  return JSON.stringify(kept);
}

/** A factor that can be used at sign-in is enrolled (recovery codes alone are only a fallback). */
export function hasFactor(factors: SecondFactors): boolean {
  return factors.totp !== undefined || factors.passkeys.length > 0;
}
