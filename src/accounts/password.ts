/**
 * Password hashing with node's built-in scrypt: memory-hard, so guessing at scale needs
 * memory as well as CPU, and no native dependency to build.
 *
 * The stored form is self-describing, `scrypt$ln=17,r=8,p=1$<salt>$<hash>` (salt and hash
 * in base64url), so the parameters can be raised later: records hashed with older
 * parameters still verify, and {@link needsRehash} says when to re-hash on the next login.
 *
 * Passwords are NFC-normalised before hashing, so the same password typed on systems
 * that compose accented characters differently still matches. Length rules for
 * passwords live in the account service, not here.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * The parameters new hashes are made with: N = 2^17, r = 8 (128 MiB), p = 1 — OWASP's first
 * recommendation for scrypt. Hashes made with older parameters (2^15 before this version)
 * still verify and are re-hashed with these at the next successful sign-in.
 */
export const CURRENT_PARAMS: Readonly<ScryptParams> = Object.freeze({ ln: 17, r: 8, p: 1 });

const SALT_BYTES = 16;
const KEY_BYTES = 32;

/**
 * Bounds on parameters read back from a record. A tampered record asking for, say,
 * N = 2^30 would make every login against it allocate gigabytes: refuse instead.
 */
const LIMITS = {
  ln: { min: 10, max: 17 },
  r: { min: 1, max: 16 },
  p: { min: 1, max: 4 },
  /** bytes of scrypt working memory (128 · N · r) */
  memory: 128 * 1024 * 1024,
  saltBytes: { min: 8, max: 64 },
  keyBytes: { min: 16, max: 64 },
} as const;

export interface ScryptParams {
  /** log2 of the cost N */
  ln: number;
  /** block size */
  r: number;
  /** parallelisation */
  p: number;
}

interface DecodedHash {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, CURRENT_PARAMS, KEY_BYTES);
  const { ln, r, p } = CURRENT_PARAMS;
  return `scrypt$ln=${ln},r=${r},p=${p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/**
 * True when `password` matches `encoded`. A malformed, tampered or foreign record is
 * simply not a match: this never throws for bad input, so a broken record cannot turn
 * a login into a server error.
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const decoded = decode(encoded);
  if (!decoded) return false;
  let actual: Buffer;
  try {
    actual = await derive(password, decoded.salt, decoded.params, decoded.hash.length);
  } catch {
    return false;
  }
  return timingSafeEqual(actual, decoded.hash);
}

/** True when `encoded` was not made with the current parameters (or cannot be read). */
export function needsRehash(encoded: string): boolean {
  const decoded = decode(encoded);
  if (!decoded) return true;
  const { params, salt, hash } = decoded;
  return (
    params.ln !== CURRENT_PARAMS.ln ||
    params.r !== CURRENT_PARAMS.r ||
    params.p !== CURRENT_PARAMS.p ||
    salt.length !== SALT_BYTES ||
    hash.length !== KEY_BYTES
  );
}

const ENCODED = /^scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

/** Parses an encoded hash, or undefined when it is malformed or outside {@link LIMITS}. */
function decode(encoded: string): DecodedHash | undefined {
  if (typeof encoded !== 'string') return undefined;
  const match = ENCODED.exec(encoded);
  if (!match) return undefined;
  const [ln, r, p] = [match[1], match[2], match[3]].map(Number) as [number, number, number];
  if (!within(ln, LIMITS.ln) || !within(r, LIMITS.r) || !within(p, LIMITS.p)) return undefined;
  if (memoryOf({ ln, r, p }) > LIMITS.memory) return undefined;
  const salt = Buffer.from(match[4]!, 'base64url');
  const hash = Buffer.from(match[5]!, 'base64url');
  // base64url decoding is lenient: re-encoding must give back the exact text
  if (salt.toString('base64url') !== match[4] || hash.toString('base64url') !== match[5]) return undefined;
  if (!within(salt.length, LIMITS.saltBytes) || !within(hash.length, LIMITS.keyBytes)) return undefined;
  return { params: { ln, r, p }, salt, hash };
}

function within(value: number, { min, max }: { min: number; max: number }): boolean {
  return Number.isInteger(value) && value >= min && value <= max;
}

function memoryOf({ ln, r }: ScryptParams): number {
  return 128 * 2 ** ln * r;
}

function derive(password: string, salt: Buffer, params: ScryptParams, keyLength: number): Promise<Buffer> {
  const options: ScryptOptions = {
    N: 2 ** params.ln,
    r: params.r,
    p: params.p,
    // node's default maxmem (32 MiB) is below 128·N·r for the current parameters, and
    // OpenSSL needs a little more than that: allow twice the working memory.
    maxmem: 2 * memoryOf(params),
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}
