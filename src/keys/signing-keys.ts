/**
 * Signing keys: created on first start, persisted in the store, identical across
 * restarts and across replicas sharing the store, rotated without breaking tokens.
 *
 * Life of a key generation (one ES256 key for access tokens, one RS256 key for ID tokens):
 *   created ──activationDelay──▶ active (signs) ──rotate──▶ retired ──retention──▶ dropped
 * A key is published in the JWKS from creation until `retention` after it retired, so
 * every replica and verifier knows a key before it signs and after its last token expires.
 *
 * A stored key set that cannot be read stops start-up with a {@link KeyStoreError};
 * a new key is never generated silently in its place.
 */
import { createPrivateKey, createPublicKey, sign, verify, type JsonWebKey as NodeJwk } from 'node:crypto';
import { generateKeyPair, exportJWK, calculateJwkThumbprint, type JWK } from 'jose';
import { z } from 'zod';
import type { SettingsStore } from '../../adapters/contract.js';

export const SIGNING_KEYS_SETTING = 'signing-keys';
export const SIGNING_ALGS = ['ES256', 'RS256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

export class KeyStoreError extends Error {
  override readonly name = 'KeyStoreError';
}

const storedKeySchema = z.object({
  jwk: z.looseObject({ kty: z.string(), kid: z.string().min(1), alg: z.enum(SIGNING_ALGS), d: z.string().min(1) }),
  createdAt: z.number().int().nonnegative(),
  activatesAt: z.number().int().nonnegative(),
  retiredAt: z.number().int().nonnegative().optional(),
});

const keySetSchema = z.object({
  format: z.literal(1),
  keys: z.array(storedKeySchema).min(1),
});

export type StoredKey = z.infer<typeof storedKeySchema>;
export type KeySet = z.infer<typeof keySetSchema>;
export type KeyState = 'pending' | 'active' | 'retired';

export interface KeyTiming {
  /** ms a new key is published before it signs */
  activationDelayMs: number;
  /** ms a retired key stays published (longest lifetime of a token it signed) */
  retentionMs: number;
}

/** Parses and checks a stored key set; every failure names what is wrong. */
export function parseKeySet(raw: string): KeySet {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new KeyStoreError('the stored signing keys are not valid JSON; restore them from a backup (refusing to create new keys silently)');
  }
  const result = keySetSchema.safeParse(json);
  if (!result.success) {
    const where = result.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
    throw new KeyStoreError(`the stored signing keys cannot be read (${where}); restore them from a backup (refusing to create new keys silently)`);
  }
  for (const key of result.data.keys) {
    if (!isUsableKeyPair(key.jwk as NodeJwk)) {
      throw new KeyStoreError(`the stored signing key ${key.jwk.kid} is not a usable private key; restore it from a backup`);
    }
  }
  return result.data;
}

/** The private part signs what the published public part verifies (Node accepts a JWK with a bogus `d`). */
export function isUsableKeyPair(jwk: NodeJwk): boolean {
  try {
    const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
    const publicKey = createPublicKey({ key: pub, format: 'jwk' });
    const probe = Buffer.from('mcp-authz key check');
    return verify('sha256', probe, publicKey, sign('sha256', probe, privateKey));
  } catch {
    return false;
  }
}

async function generateKey(alg: SigningAlg, createdAt: number, activatesAt: number): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const jwk = await exportJWK(privateKey);
  const kid = `${new Date(createdAt).toISOString().slice(0, 10)}-${(await calculateJwkThumbprint(jwk)).slice(0, 12)}`;
  return { jwk: { ...jwk, kty: jwk.kty!, d: jwk.d!, kid, alg, use: 'sig' }, createdAt, activatesAt };
}

async function generateGeneration(createdAt: number, activatesAt: number): Promise<StoredKey[]> {
  return Promise.all(SIGNING_ALGS.map((alg) => generateKey(alg, createdAt, activatesAt)));
}

export function keyState(key: StoredKey, now: number): KeyState {
  if (key.retiredAt !== undefined && key.retiredAt <= now) return 'retired';
  if (key.activatesAt > now) return 'pending';
  return 'active';
}

/** Drops retired keys whose tokens have all expired. */
export function prune(set: KeySet, now: number, timing: KeyTiming): KeySet {
  return { ...set, keys: set.keys.filter((k) => k.retiredAt === undefined || k.retiredAt + timing.retentionMs > now) };
}

/**
 * The JWKS the provider runs with at `now`: active keys first (newest first) and free to
 * sign; pending and retired keys after them, marked verify-only so they never sign.
 */
export function providerJwks(set: KeySet, now: number, timing: KeyTiming): { keys: JWK[] } {
  const rank: Record<KeyState, number> = { active: 0, pending: 1, retired: 2 };
  const keys = prune(set, now, timing)
    .keys.map((key) => ({ key, state: keyState(key, now) }))
    .sort((a, b) => rank[a.state] - rank[b.state] || b.key.activatesAt - a.key.activatesAt)
    .map(({ key, state }) => (state === 'active' ? { ...key.jwk } : { ...key.jwk, key_ops: ['verify'] }));
  for (const alg of SIGNING_ALGS) {
    if (!keys.some((k) => k.alg === alg && k.key_ops === undefined)) {
      // No active key for an algorithm (e.g. a rotation still pending right after first start
      // with activationDelay): the newest published key of that algorithm signs.
      const fallback = keys.find((k) => k.alg === alg);
      if (fallback) delete fallback.key_ops;
    }
  }
  return { keys: keys as JWK[] };
}

/** A fingerprint of what the provider would run with; changes when it must be rebuilt. */
export function jwksFingerprint(jwks: { keys: JWK[] }): string {
  return jwks.keys.map((k) => `${k.kid}:${k.key_ops ? 'v' : 's'}`).join(',');
}

/**
 * Reads the key set, creating the first one when the store has none. Concurrent first
 * starts of several replicas converge on one key set (create-if-absent, then re-read).
 */
export async function loadOrCreateKeySet(settings: SettingsStore, now = Date.now()): Promise<{ set: KeySet; created: boolean }> {
  const existing = await settings.get(SIGNING_KEYS_SETTING);
  if (existing) return { set: parseKeySet(existing.value), created: false };
  const first: KeySet = { format: 1, keys: await generateGeneration(now, now) };
  const created = await settings.create(SIGNING_KEYS_SETTING, JSON.stringify(first));
  const stored = await settings.get(SIGNING_KEYS_SETTING);
  if (!stored) throw new KeyStoreError('the signing keys vanished from the store right after being created');
  return { set: parseKeySet(stored.value), created };
}

/** Reads the key set; a store without one is an error here (only start-up creates keys). */
export async function readKeySet(settings: SettingsStore): Promise<KeySet> {
  const stored = await settings.get(SIGNING_KEYS_SETTING);
  if (!stored) throw new KeyStoreError('no signing keys in the store yet; start the server once to create them');
  return parseKeySet(stored.value);
}

/**
 * Adds a new key generation that activates after `activationDelayMs`; the keys active now
 * retire at that moment and stay published for `retentionMs` more. Compare-and-swap, so
 * concurrent rotations never lose a key.
 */
export async function rotateKeys(settings: SettingsStore, timing: KeyTiming, now = Date.now()): Promise<{ added: StoredKey[]; retiring: StoredKey[] }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const stored = await settings.get(SIGNING_KEYS_SETTING);
    if (!stored) throw new KeyStoreError('no signing keys in the store yet; start the server once to create them');
    const set = prune(parseKeySet(stored.value), now, timing);
    const activatesAt = now + timing.activationDelayMs;
    const added = await generateGeneration(now, activatesAt);
    const retiring: StoredKey[] = [];
    const keys = set.keys.map((key) => {
      if (key.retiredAt !== undefined && key.retiredAt <= activatesAt) return key;
      const retired = { ...key, retiredAt: activatesAt };
      retiring.push(retired);
      return retired;
    });
    const next: KeySet = { format: 1, keys: [...added, ...keys] };
    if (await settings.replace(SIGNING_KEYS_SETTING, stored.version, JSON.stringify(next))) return { added, retiring };
  }
  throw new KeyStoreError('could not rotate keys: the key set kept changing concurrently; try again');
}

/** Public view of a stored key, for listings. */
export function describeKey(key: StoredKey, now: number) {
  const pub = createPublicKey({ key: key.jwk as NodeJwk, format: 'jwk' });
  return {
    kid: key.jwk.kid,
    alg: key.jwk.alg,
    state: keyState(key, now),
    createdAt: new Date(key.createdAt).toISOString(),
    activatesAt: new Date(key.activatesAt).toISOString(),
    retiredAt: key.retiredAt === undefined ? undefined : new Date(key.retiredAt).toISOString(),
    type: pub.asymmetricKeyType,
  };
}
