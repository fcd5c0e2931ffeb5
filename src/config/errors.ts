/** A configuration that cannot be used: the message names the setting and why, never a secret. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
