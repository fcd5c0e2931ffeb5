/**
 * Encryption at rest of a secret the server must keep and use again (an upstream refresh
 * token): AES-256-GCM under a key derived with HKDF-SHA256 from each cookie key
 * (`secrets.cookieKeysFile`, or the keys kept in the store), with an `info` label of the
 * caller's own, so the key is unrelated to the cookie signatures and the CSRF key. Sealed with
 * the first (newest) cookie key; opened with whichever key fits, so rotating the cookie keys
 * (new first, old kept) leaves what was sealed readable. `context` (e.g. connection and
 * account) is authenticated data: a sealed value moved to another record does not open.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const SALT = 'mcp-authz/seal';

export class Sealer {
  readonly #keys: Buffer[];

  constructor(cookieKeys: readonly string[], label: string) {
    if (cookieKeys.length === 0) throw new Error('no key to seal with');
    this.#keys = cookieKeys.map((k) => Buffer.from(hkdfSync('sha256', k, SALT, label, 32)));
  }

  /** `v1.<iv>.<ciphertext>.<tag>`, base64url. */
  seal(plain: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys[0]!, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [VERSION, iv, body, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** The plain text, or undefined when no key opens it (tampered, another context, keys since dropped). */
  open(sealed: string, context: string): string | undefined {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== VERSION) return undefined;
    const [iv, body, tag] = parts.slice(1).map((p) => Buffer.from(p, 'base64url'));
    if (iv!.length !== 12 || tag!.length !== 16) return undefined;
    for (const key of this.#keys) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv!);
        decipher.setAAD(Buffer.from(context));
        decipher.setAuthTag(tag!);
        return Buffer.concat([decipher.update(body!), decipher.final()]).toString('utf8');
      } catch {
        // not this key
      }
    }
    return undefined;
  }
}
