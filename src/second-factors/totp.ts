/**
 * TOTP (RFC 6238) as authenticator apps do it: a 160-bit base32 secret, SHA-1, 6 digits, 30 s
 * steps. A code is accepted for the current step or the one before or after (clock drift), and
 * only for a step later than the last one accepted: a code works once.
 */
import { generate, generateSecret, generateURI, verify } from 'otplib';

/** Seconds either side of now whose codes are accepted (one step each way). */
const TOLERANCE_SECONDS = 30;
const CODE = /^[0-9]{6}$/;

export function newTotpSecret(): string {
  return generateSecret();
}

/** The `otpauth://` URI an authenticator app takes (typed or from a QR code). */
export function totpUri(issuer: string, accountName: string, secret: string): string {
  return generateURI({ issuer, label: accountName, secret });
}

/** Spaces and dashes people type between digits are dropped. */
export function normalizeCode(input: string): string {
  return input.replace(/[\s-]/g, '');
}

/**
 * The time step `code` is valid for, when it is a valid code for `secret` of a step after
 * `lastUsedStep`; undefined otherwise.
 */
export async function checkTotp(secret: string, code: string, lastUsedStep?: number): Promise<number | undefined> {
  const token = normalizeCode(code);
  if (!CODE.test(token)) return undefined;
  try {
    const result = await verify({
      secret,
      token,
      epochTolerance: TOLERANCE_SECONDS,
      ...(lastUsedStep === undefined ? {} : { afterTimeStep: lastUsedStep }),
    });
    return result.valid && 'timeStep' in result ? result.timeStep : undefined;
  } catch {
    return undefined;
  }
}

/** The current code (tests, and nothing else, need to make one). */
export function totpCode(secret: string): Promise<string> {
  return generate({ secret });
}
