/**
 * How long keys are published around their signing life, derived from the configuration:
 * a retired key stays until the longest-lived token it can have signed has expired.
 */
import type { Config } from '../config/schema.js';
import type { KeyTiming } from './signing-keys.js';

/** Default lifetime of access tokens that are not for a configured resource (userinfo). */
export const DEFAULT_ACCESS_TOKEN_TTL = 3600;

/** The longest an access token issued under this configuration can live, in seconds. */
export function longestAccessTokenTtl(config: Config): number {
  return Math.max(DEFAULT_ACCESS_TOKEN_TTL, ...config.resources.map((r) => r.accessTokenTtl));
}

export function keyTiming(config: Config): KeyTiming {
  const longestToken = Math.max(longestAccessTokenTtl(config), config.ttl.idToken);
  return {
    activationDelayMs: config.keys.activationDelay * 1000,
    // plus one reload interval (a replica may sign with a retired key until it reloads) and a minute of clock skew
    retentionMs: (longestToken + config.keys.reloadInterval + 60) * 1000,
  };
}
