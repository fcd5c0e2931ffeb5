/**
 * Loads the configuration: the file named by `--config FILE` or `MCP_AUTHZ_CONFIG`
 * (YAML or JSON), with environment variables on top, validated by the one schema.
 * Every failure is a {@link ConfigError} whose message names the field and why.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { DEMO_MCP_PORT, demoConfig } from '../demo/config.js';
import { ConfigError } from './errors.js';
import { readSecretText } from '../keys/secret-files.js';

export { ConfigError };

type Env = Record<string, string | undefined>;

const list = (v: string) => v.split(',').map((item) => item.trim()).filter((item) => item !== '');
const boolean = (v: string) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v);

/** Environment variable → config key, with its parser. */
const ENV: Record<string, { key: string; parse: (v: string) => unknown }> = {
  ISSUER: { key: 'issuer', parse: (v) => v },
  PORT: { key: 'port', parse: (v) => (/^\d+$/.test(v) ? Number(v) : v) },
  HOST: { key: 'host', parse: (v) => v },
  DATA_DIR: { key: 'dataDir', parse: (v) => v },
  REDIS_URL: { key: 'redisUrl', parse: (v) => v },
  REDIS_SENTINELS: { key: 'redisSentinels', parse: list },
  REDIS_SENTINEL_NAME: { key: 'redisSentinelName', parse: (v) => v },
  REDIS_CLUSTER_NODES: { key: 'redisClusterNodes', parse: list },
  REDIS_PASSWORD: { key: 'redisPassword', parse: (v) => v },
  REDIS_PASSWORD_FILE: { key: 'redisPasswordFile', parse: (v) => v },
  REDIS_TLS: { key: 'redisTls', parse: boolean },
  LOG_LEVEL: { key: 'logLevel', parse: (v) => v },
  ADMIN_PORT: { key: 'admin.port', parse: (v) => (/^\d+$/.test(v) ? Number(v) : v) },
  ADMIN_HOST: { key: 'admin.host', parse: (v) => v },
  SHUTDOWN_GRACE_PERIOD: { key: 'shutdown.gracePeriod', parse: (v) => (/^\d+$/.test(v) ? Number(v) : v) },
  SHUTDOWN_DRAIN_DELAY: { key: 'shutdown.drainDelay', parse: (v) => (/^\d+$/.test(v) ? Number(v) : v) },
  TRUST_PROXY: { key: 'trustProxy', parse: boolean },
  PROXY_HOPS: { key: 'proxyHops', parse: (v) => (/^\d+$/.test(v) ? Number(v) : v) },
  MCP_AUTHZ_REGISTRATION_TOKEN: { key: 'registration.initialAccessToken', parse: (v) => v },
  COOKIE_KEYS_FILE: { key: 'secrets.cookieKeysFile', parse: (v) => v },
  SIGNING_KEYS_FILE: { key: 'keys.file', parse: (v) => v },
};

export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  try {
    const value = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { prettyErrors: true });
    if (value === null || value === undefined) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new ConfigError(`config file ${path}: the top level must be a mapping of keys`);
    }
    return value;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const reason = (err as Error).message.split('\n')[0];
    throw new ConfigError(`config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${reason}`);
  }
}

/**
 * Formats zod issues as `field.path: reason` lines. Unknown keys are reported at their own
 * path (a typo names itself), and a refused mapping key says why it was refused.
 */
export function describeIssues(error: z.ZodError, source: string): string {
  const lines = error.issues.flatMap((issue): string[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => `  ${formatPath([...issue.path, key])}: unknown key`);
    }
    const message =
      issue.code === 'invalid_key' && issue.issues.length > 0
        ? `invalid key: ${[...new Set(issue.issues.map((i) => i.message))].join('; ')}`
        : issue.message;
    return [`  ${formatPath(issue.path)}: ${message}`];
  });
  return `invalid configuration (${source}):\n${lines.join('\n')}`;
}

/** `resources[0].scopes["notes read"]`: dotted where a key is a plain name, quoted otherwise. */
function formatPath(path: PropertyKey[]): string {
  const text = path
    .map((p) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(String(p)) ? `.${String(p)}` : `[${JSON.stringify(String(p))}]`))
    .join('')
    .replace(/^\./, '');
  return text || '(top level)';
}

export interface LoadOptions {
  /** `--config FILE` from the command line; wins over MCP_AUTHZ_CONFIG */
  configPath?: string | undefined;
  env?: Env;
  /** extra values that win over file and environment (tests, embedding) */
  overrides?: Record<string, unknown>;
}

/**
 * The file (if any), the environment on top, then `overrides`. Without a config file the
 * configuration is the demo's (src/demo/config.ts) unless `MCP_AUTHZ_DEMO=off`; a config file
 * never runs the demo.
 */
export function loadConfig({ configPath, env = process.env, overrides = {} }: LoadOptions = {}): Config {
  const path = configPath ?? env.MCP_AUTHZ_CONFIG;
  const fromFile = path ? (readConfigFile(resolve(path)) as Record<string, unknown>) : {};
  if ('demo' in fromFile) throw new ConfigError(`invalid configuration (${path}):\n  demo: the demo runs only without a config file`);
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [name, { key, parse }] of Object.entries(ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(merged, key.split('.'), parse(value));
  }
  const source = path ? `${path} and environment` : 'environment';
  const config = parseConfig({ ...merged, ...overrides }, source);
  const demoPort = path ? undefined : demoMcpPort(env);
  if (demoPort === undefined) return config;
  // the demo's clients need the issuer, which the environment may have set
  return parseConfig({ ...merged, ...demoConfig(config.issuer, demoPort), ...overrides }, 'the demo (no config file) and environment');
}

const DemoEnvSchema = z.object({
  MCP_AUTHZ_DEMO: z.enum(['off', '']).optional(),
  MCP_AUTHZ_DEMO_MCP_PORT: z
    .string()
    .regex(/^\d{1,5}$/, 'must be a port number')
    .transform(Number)
    .refine((port) => port >= 1 && port <= 65535, 'must be a port number from 1 to 65535')
    .optional(),
});

/** The demo's MCP server port, or undefined when `MCP_AUTHZ_DEMO=off`. */
function demoMcpPort(env: Env): number | undefined {
  const parsed = DemoEnvSchema.safeParse({ MCP_AUTHZ_DEMO: env.MCP_AUTHZ_DEMO, MCP_AUTHZ_DEMO_MCP_PORT: env.MCP_AUTHZ_DEMO_MCP_PORT || undefined });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) =>
      issue.path[0] === 'MCP_AUTHZ_DEMO' ? '  MCP_AUTHZ_DEMO: only "off" is understood (it turns the demo off)' : `  ${String(issue.path[0])}: ${issue.message}`,
    );
    throw new ConfigError(`invalid configuration (environment):\n${lines.join('\n')}`);
  }
  if (parsed.data.MCP_AUTHZ_DEMO === 'off') return undefined;
  return parsed.data.MCP_AUTHZ_DEMO_MCP_PORT ?? DEMO_MCP_PORT;
}

/** Sets `a.b` in a copy-on-write way: the file's nested mapping keeps its other keys. */
function setPath(target: Record<string, unknown>, [head, ...rest]: string[], value: unknown): void {
  if (head === undefined) return;
  if (rest.length === 0) {
    target[head] = value;
    return;
  }
  const inner = target[head];
  const copy = inner && typeof inner === 'object' && !Array.isArray(inner) ? { ...(inner as Record<string, unknown>) } : {};
  setPath(copy, rest, value);
  target[head] = copy;
}

/**
 * Validates a plain object (already merged) and fills in derived values: the issuer's
 * default, and `redisPassword` read from `redisPasswordFile`.
 */
export function parseConfig(input: unknown, source = 'configuration'): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError(describeIssues(result.error, source));
  const parsed = result.data;
  const issuer = (parsed.issuer ?? `http://localhost:${parsed.port}`).replace(/\/$/, '');
  const redisPassword = parsed.redisPasswordFile === undefined ? parsed.redisPassword : readSecretFile(parsed.redisPasswordFile, 'redisPasswordFile (env REDIS_PASSWORD_FILE)', source);
  return deepFreeze({ ...parsed, issuer, ...(redisPassword === undefined ? {} : { redisPassword }) });
}

/**
 * A secret mounted as a file (a Kubernetes Secret, a Docker secret): its text without the
 * trailing newline. A failure names the setting and the path, never the content.
 */
function readSecretFile(path: string, field: string, source: string): string {
  const read = readSecretText(path);
  if ('problem' in read) throw new ConfigError(`invalid configuration (${source}):\n  ${field}: ${read.problem}`);
  return read.text.replace(/(\r?\n)+$/, '');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
