/**
 * Server secrets that must be the same across restarts and replicas: the keys that sign
 * cookies (oidc-provider sessions and interactions) and the CSRF tokens of our forms.
 * Created on first start (create-if-absent, so replicas converge), never logged.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { SettingsStore } from '../../adapters/contract.js';
import { KeyStoreError } from './signing-keys.js';

export const SECRETS_SETTING = 'server-secrets';

const secretsSchema = z.object({
  format: z.literal(1),
  cookieKeys: z.array(z.string().min(43)).min(1),
  csrfKey: z.string().min(43),
});

export interface ServerSecrets {
  /** newest first; oidc-provider signs with the first and accepts all */
  cookieKeys: string[];
  csrfKey: Buffer;
}

function parseSecrets(raw: string): ServerSecrets {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new KeyStoreError('the stored server secrets are not valid JSON; restore them from a backup');
  }
  const result = secretsSchema.safeParse(json);
  if (!result.success) throw new KeyStoreError('the stored server secrets cannot be read; restore them from a backup');
  return { cookieKeys: result.data.cookieKeys, csrfKey: Buffer.from(result.data.csrfKey, 'base64url') };
}

export async function loadOrCreateSecrets(settings: SettingsStore): Promise<ServerSecrets> {
  const existing = await settings.get(SECRETS_SETTING);
  if (existing) return parseSecrets(existing.value);
  const fresh = { format: 1, cookieKeys: [randomBytes(32).toString('base64url')], csrfKey: randomBytes(32).toString('base64url') };
  await settings.create(SECRETS_SETTING, JSON.stringify(fresh));
  const stored = await settings.get(SECRETS_SETTING);
  if (!stored) throw new KeyStoreError('the server secrets vanished from the store right after being created');
  return parseSecrets(stored.value);
}
