/**
 * The one configuration schema. Environment variables and the config file (YAML or JSON)
 * are merged and validated against it at start; `docs/configuration.md` is generated
 * from the descriptions below (`npm run docs`), and a test fails when it is stale.
 */
import { z } from 'zod';
import { canonicalResourceUri, hasUserinfo, isLoopbackHost } from './uri.js';
import { readSecretText } from '../keys/secret-files.js';
import { domainNameSchema } from './domain-name.js';
import { roleSchema } from '../accounts/schema.js';
import { connectionsSchema, localSignInSchema, secondFactorSchema } from './sign-in.js';

/** No access token lives longer than this (seconds). */
export const MAX_ACCESS_TOKEN_TTL = 86400;

const SCOPE_NAME = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 scope-token: no space, quote or backslash

const scopeName = z
  .string()
  .min(1)
  .max(128)
  .regex(SCOPE_NAME, 'a scope name is printable ASCII without spaces, quotes or backslashes');

const seconds = (what: string, def: number, max: number) =>
  z.number().int().min(1).max(max).default(def).describe(`${what}, in seconds.`);

const domainName = domainNameSchema;

const rateLimit = (what: string, max: number, window: number) =>
  z
    .object({
      max: z.number().int().min(1).max(1_000_000).describe('How many in one window.'),
      window: z.number().int().min(1).max(86400).describe('The window, in seconds.'),
    })
    .strict()
    .default({ max, window })
    .describe(`${what}: at most \`max\` per \`window\` seconds (default ${max} per ${window} s).`);

/** The client id of the account pages' built-in client (src/provider/account-client.ts), which no configured client may take. */
export const ACCOUNT_CLIENT_ID = 'mcp-authz-account';

const absoluteUrl = z.string().refine((v) => URL.canParse(v), 'must be an absolute URL');

/** `host:port` (an IPv6 address in brackets: `[::1]:6379`), as Redis Sentinel and Cluster nodes are given. */
export const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):(\d{1,5})$/;

const redisNodes = (what: string) =>
  z
    .array(
      z
        .string()
        .regex(HOST_PORT, 'a host:port such as redis-0.redis:6379')
        .refine((v) => {
          const port = Number(HOST_PORT.exec(v)?.[2]);
          return port >= 1 && port <= 65535;
        }, 'the port must be from 1 to 65535'),
    )
    .min(1)
    .optional()
    .describe(what);

/** The Redis settings, named as in the configuration, for messages. */
const REDIS_MODES = ['redisUrl', 'redisSentinels', 'redisClusterNodes'] as const;

/** An MCP server's URL (RFC 8707 resource indicator): absolute, no fragment, no userinfo; kept in canonical form. */
const resourceUri = absoluteUrl
  .refine((v) => !v.includes('#'), 'must not contain a fragment')
  .refine((v) => !hasUserinfo(v), 'must not contain userinfo (user@)')
  .transform(canonicalResourceUri);

export const scopeSchema = z
  .object({
    description: z.string().min(1).max(300).describe('What the scope lets a client do, in plain words; shown on the consent page.'),
    dangerous: z
      .boolean()
      .default(false)
      .describe(
        'Marks a scope that unlocks destructive or sensitive tools: never preselected, asked again on every authorization (never granted from remembered consent).',
      ),
    tools: z
      .array(z.string().min(1).max(100))
      .default([])
      .describe('Names of the MCP tools this scope unlocks, listed on the consent page.'),
    allow: z
      .array(z.string().regex(/^(role|user|client):\S+$/, 'an entry is `role:NAME`, `user:USERNAME` or `client:CLIENT_ID`'))
      .optional()
      .describe(
        'Who may be granted this scope: people by role or name (`role:admin`, `user:alice`), and clients acting for themselves with client credentials (`client:nightly-report`). Default: every person, and machine clients only when the scope is not `dangerous`. People not listed see it as not available.',
      ),
    accessTokenTtl: z
      .number()
      .int()
      .min(1)
      .max(MAX_ACCESS_TOKEN_TTL)
      .optional()
      .describe("Shorter lifetime, in seconds, of access tokens carrying this scope (e.g. a dangerous one); the shortest of a token's scopes applies."),
  })
  .strict();

export const resourceSchema = z
  .object({
    uri: resourceUri.describe("The MCP server's canonical URL; it becomes the `aud` of the tokens issued for it."),
    aliases: z
      .array(resourceUri)
      .default([])
      .describe('Other URLs clients may name for this MCP server (e.g. its origin without the path); tokens are still issued for `uri`.'),
    name: z.string().min(1).max(100).describe('Human-readable name of the MCP server, shown on consent pages.'),
    scopes: z
      .record(scopeName, scopeSchema)
      .refine((s) => Object.keys(s).length > 0, 'declare at least one scope')
      .describe('The scopes this MCP server understands, by name.'),
    defaultScopes: z
      .array(scopeName)
      .default([])
      .describe('Scopes granted when a request for this server names none (each must be declared in `scopes`).'),
    accessTokenTtl: seconds('Lifetime of access tokens for this server', 3600, MAX_ACCESS_TOKEN_TTL),
    resourceServerClients: z
      .array(z.string().min(1))
      .default([])
      .describe('Client ids that act as this MCP server: they may introspect tokens issued for it.'),
  })
  .strict();

export const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:device_code',
] as const;

export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;

const jwkSchema = z.looseObject({ kty: z.string() });

export const clientSchema = z
  .object({
    client_id: z.string().min(1).max(255).describe('The client identifier (RFC 7591).'),
    client_secret: z
      .string()
      .min(16, 'must be at least 16 characters')
      .max(512)
      .optional()
      .describe('Shared secret for `client_secret_basic` / `client_secret_post`.'),
    client_name: z.string().min(1).max(200).optional().describe('Display name shown on consent pages.'),
    jwks: z
      .object({ keys: z.array(jwkSchema).min(1) })
      .optional()
      .describe('Public keys for `private_key_jwt` client authentication.'),
    jwks_uri: absoluteUrl.optional().describe('URL of the public keys for `private_key_jwt` client authentication.'),
    grant_types: z
      .array(z.enum(GRANT_TYPES))
      .min(1)
      .default(['authorization_code', 'refresh_token'])
      .describe('Grant types the client may use.'),
    redirect_uris: z.array(absoluteUrl).default([]).describe('Exact redirect URIs (authorization code flow).'),
    post_logout_redirect_uris: z.array(absoluteUrl).default([]).describe('Where the client may send people after sign-out.'),
    token_endpoint_auth_method: z
      .enum(AUTH_METHODS)
      .optional()
      .describe(
        'How the client authenticates at the token endpoint. Default: `client_secret_basic` with a secret, `private_key_jwt` with keys, otherwise `none` (public client).',
      ),
    application_type: z.enum(['web', 'native']).optional().describe('`native` for apps on the user device (loopback or custom-scheme redirects).'),
    scope: z
      .string()
      .regex(/^\S+( \S+)*$/, 'a space-separated list of scope names')
      .optional()
      .describe(
        "Space-separated scopes the client may ever be granted. Default: every scope of its resources. Its tokens without a person (client credentials) never carry a `dangerous` scope or one with an `allow` list unless that list names it (`client:ID`).",
      ),
    resources: z
      .array(absoluteUrl.transform(canonicalResourceUri))
      .optional()
      .describe('MCP server URLs the client may get tokens for. Default: every configured resource.'),
    client_secret_file: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A file holding `client_secret` (e.g. a mounted Kubernetes or Docker secret), read at start; surrounding whitespace and the final newline are ignored. Instead of `client_secret`, never with it.',
      ),
  })
  .strict()
  .transform((client, ctx) => {
    if (client.client_secret_file === undefined) return client;
    const at = (message: string) => ctx.addIssue({ code: 'custom', path: ['client_secret_file'], message });
    if (client.client_secret !== undefined) {
      at('set client_secret or client_secret_file, not both');
      return z.NEVER;
    }
    const read = readSecretText(client.client_secret_file);
    if ('problem' in read) {
      at(read.problem);
      return z.NEVER;
    }
    const secret = read.text.trim();
    if (secret.length < 16 || secret.length > 512) {
      at(`the secret in ${client.client_secret_file} must be 16 to 512 characters`);
      return z.NEVER;
    }
    return { ...client, client_secret: secret };
  });

export const APPROVAL_ASK = ['always', 'once_per_session', 'never'] as const;
export const APPROVAL_SECOND_FACTOR = ['if_enrolled', 'always', 'off'] as const;

export const toolApprovalPolicySchema = z
  .object({
    resource: resourceUri.optional().describe('Only calls to this MCP server (its `uri`). Default: any.'),
    tool: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .describe('Only calls of this tool (`*`: any, as when absent).'),
    scope: scopeName
      .optional()
      .describe("Only tools this scope unlocks (listed in the scope's `tools`); a scope of `resource` when that is given, else of some resource."),
    role: roleSchema.optional().describe('Only calls on behalf of a person with this role.'),
    client: z.string().min(1).max(512).optional().describe('Only calls by this client (its client id).'),
    ask: z
      .enum(APPROVAL_ASK)
      .describe(
        '`always`: the person approves every call; `once_per_session`: the first call of this tool on this authorization (grant), later calls with any arguments go ahead; `never`: approved at once (no person asked).',
      ),
    secondFactor: z
      .enum(APPROVAL_SECOND_FACTOR)
      .default('if_enrolled')
      .describe(
        'When approving needs a fresh second factor: `if_enrolled` (a person who has one), `always` (a person without one cannot approve), or `off`.',
      ),
  })
  .strict();

const toolApprovalsSchema = z
  .object({
    requestTtl: z
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(300)
      .describe('How long a request waits for the person to approve or refuse it, in seconds (30 or more in practice).'),
    tokenTtl: z
      .number()
      .int()
      .min(10)
      .max(600)
      .default(60)
      .describe('Lifetime of an approval token (what the MCP server accepts as the approval of one call), in seconds.'),
    pollInterval: z.number().int().min(1).max(60).default(5).describe('How often, in seconds, an MCP server is told to ask again while a request is pending.'),
    policies: z
      .array(toolApprovalPolicySchema)
      .max(200)
      .default([])
      .describe(
        'Which calls need a person\'s approval, for MCP servers that ask (`POST /tool-approvals`). The first policy whose every given field matches the call applies; when none does, the person approves every call (`ask: always`, `secondFactor: if_enrolled`).',
      ),
  })
  .strict()
  .default({ requestTtl: 300, tokenTtl: 60, pollInterval: 5, policies: [] })
  .describe('Per-call approval of MCP tool calls by the person the token was issued for.');

export const configSchema = z
  .object({
    issuer: absoluteUrl
      .optional()
      .describe('Issuer identifier (env `ISSUER`). Default `http://localhost:$PORT`. Must be https unless the host is loopback.'),
    port: z.number().int().min(0).max(65535).default(4000).describe('TCP port to listen on (env `PORT`).'),
    host: z.string().min(1).default('0.0.0.0').describe('Address to listen on (env `HOST`).'),
    dataDir: z.string().min(1).default('./data').describe('Directory of the embedded SQLite store (env `DATA_DIR`).'),
    redisUrl: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional()
      .describe(
        'When set, the store is this one Redis server instead of SQLite (env `REDIS_URL`); `rediss://` for TLS. One of `redisUrl`, `redisSentinels` and `redisClusterNodes` at most.',
      ),
    redisSentinels: redisNodes(
      'When set, the store is the Redis master that these Sentinels name `redisSentinelName`, followed through failovers (env `REDIS_SENTINELS`, comma-separated `host:port`).',
    ),
    redisSentinelName: z
      .string()
      .min(1)
      .optional()
      .describe('The master name the Sentinels monitor (env `REDIS_SENTINEL_NAME`); required with `redisSentinels`.'),
    redisClusterNodes: redisNodes(
      'When set, the store is the Redis Cluster these seed nodes belong to (env `REDIS_CLUSTER_NODES`, comma-separated `host:port`; the others are discovered).',
    ),
    redisPassword: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Password of the Redis servers (env `REDIS_PASSWORD`), in any mode; with `redisUrl`, give it here or in the URL, not both. Sentinels themselves are reached without one.',
      ),
    redisPasswordFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A file holding `redisPassword` (env `REDIS_PASSWORD_FILE`), such as a mounted Kubernetes Secret; a trailing newline is ignored. Not with `redisPassword`.',
      ),
    redisTls: z
      .boolean()
      .default(false)
      .describe('Connect to Redis (and to the Sentinels) over TLS, verified against the system CAs (env `REDIS_TLS`). A `rediss://` URL implies it.'),
    redisKeyPrefix: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[^{}]*$/, 'must not contain { or } (hash tags are set per entity)')
      .default('mcp-authz:')
      .describe('Prefix of every Redis key; without `{` or `}` (the store sets the hash tags that place keys on Redis Cluster slots).'),
    corsOrigins: z
      .array(z.union([z.literal('*'), z.string().refine((v) => URL.canParse(v) && new URL(v).origin === v, 'an origin such as https://app.example.com')]))
      .default([])
      .describe(
        'Origins from which browser-based clients may call the token, revocation and introspection endpoints, besides the origins of their own redirect URIs; `*` for any.',
      ),
    trustProxy: z
      .boolean()
      .default(false)
      .describe('Trust `X-Forwarded-*` headers (only behind a proxy that sets them; env `TRUST_PROXY`).'),
    proxyHops: z
      .number()
      .int()
      .min(1)
      .max(10)
      .default(1)
      .describe(
        'With `trustProxy`: how many proxies in front of this server append to `X-Forwarded-For` (a load balancer behind a CDN is 2). The client address is read that many entries from the right, so a client cannot choose the address rate limits and the audit trail see by sending the header itself (env `PROXY_HOPS`).',
      ),
    admin: z
      .object({
        enabled: z.boolean().default(true).describe('Start the admin listener (`/healthz`, `/readyz`, `/metrics`) on its own port.'),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(9464)
          .describe('Port of the admin listener (env `ADMIN_PORT`). Never expose it publicly: `/metrics` names clients.'),
        host: z
          .string()
          .min(1)
          .default('127.0.0.1')
          .describe('Address of the admin listener (env `ADMIN_HOST`). Loopback by default; `0.0.0.0` in a container so probes and Prometheus reach it.'),
      })
      .strict()
      .default({ enabled: true, port: 9464, host: '127.0.0.1' })
      .describe('The admin listener: health (`/healthz`), readiness (`/readyz`: store reachable, signing keys loaded, not draining) and Prometheus metrics (`/metrics`).'),
    shutdown: z
      .object({
        gracePeriod: z
          .number()
          .int()
          .min(0)
          .max(600)
          .default(10)
          .describe(
            'Seconds requests in flight may take to finish after SIGTERM or SIGINT before their connections are closed (env `SHUTDOWN_GRACE_PERIOD`). Keep it below the orchestrator\'s own (Kubernetes `terminationGracePeriodSeconds`).',
          ),
        drainDelay: z
          .number()
          .int()
          .min(0)
          .max(60)
          .default(0)
          .describe(
            'Seconds between SIGTERM and closing the public listener, while `/readyz` already answers 503 and requests are still served: time for a load balancer that polls readiness to stop sending new connections (env `SHUTDOWN_DRAIN_DELAY`). In Kubernetes a `preStop` sleep does the same (the chart sets one).',
          ),
      })
      .strict()
      .default({ gracePeriod: 10, drainDelay: 0 })
      .describe('Graceful shutdown: on SIGTERM readiness turns false, new connections are refused, requests in flight finish, feed followers are told to reconnect, the audit log is flushed and the store closed.'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Application log level (env `LOG_LEVEL`).'),
    dangerouslyAllowHttpIssuer: z
      .boolean()
      .default(false)
      .describe('Allow an `http://` issuer on a non-loopback host. Never in production.'),
    demo: z
      .object({
        mcpPort: z.number().int().min(1).max(65535).describe('Port of the example Notes MCP server started alongside (env `MCP_AUTHZ_DEMO_MCP_PORT`, default 3001).'),
      })
      .strict()
      .optional()
      .describe(
        'Set by starting without a config file, never by one: the demo (README, "Try it"). The example Notes MCP server runs alongside as the one resource, `/setup` creates the first account from a one-time link printed at start, and `/demo` is an MCP host page to try a sign-in, consent and tool call. `MCP_AUTHZ_DEMO=off` turns it off without a config file.',
      ),
    resources: z.array(resourceSchema).default([]).describe('The MCP servers this server issues tokens for.'),
    defaultResource: absoluteUrl
      .transform(canonicalResourceUri)
      .optional()
      .describe(
        'The MCP server a request without `resource` is for. Without it, a client that may use exactly one MCP server gets that one; otherwise such a request for MCP scopes is `invalid_target`.',
      ),
    clients: z.array(clientSchema).default([]).describe('Statically registered clients.'),
    localSignIn: localSignInSchema,
    connections: connectionsSchema,
    secondFactor: secondFactorSchema,
    ttl: z
      .object({
        authorizationCode: seconds('Authorization code lifetime', 60, 600),
        refreshToken: seconds('Refresh token lifetime', 14 * 86400, 365 * 86400),
        deviceCode: seconds('Device code (and user code) lifetime', 600, 3600),
        idToken: seconds('ID token lifetime', 3600, 86400),
        session: seconds('Browser sign-in session lifetime', 14 * 86400, 365 * 86400),
        interaction: seconds('Lifetime of one sign-in/consent interaction', 600, 3600),
        grant: seconds('Lifetime of a grant (the consent a person gave a client)', 365 * 86400, 5 * 365 * 86400),
      })
      .strict()
      .default({
        authorizationCode: 60,
        refreshToken: 14 * 86400,
        deviceCode: 600,
        idToken: 3600,
        session: 14 * 86400,
        interaction: 600,
        grant: 365 * 86400,
      })
      .describe('Token and session lifetimes.'),
    keys: z
      .object({
        reloadInterval: seconds('How often a running server re-reads the signing keys from the store', 30, 3600),
        activationDelay: z
          .number()
          .int()
          .min(0)
          .max(86400)
          .default(60)
          .describe(
            'Seconds a rotated-in key is published before it signs, so every replica and verifier knows it first (at least twice `reloadInterval`).',
          ),
        file: z
          .string()
          .min(1)
          .optional()
          .describe(
            'A JWKS file of private signing keys (env `SIGNING_KEYS_FILE`), e.g. a mounted secret: the server signs with these and neither creates nor rotates keys in the store. Each key needs `kid`, `alg` (`ES256` on a P-256 key signs access tokens, `RS256` ID tokens; one of each at least) and its private part. The first key of each `alg` signs, later ones are only published (add a new key last, move it first once every verifier knows it, then drop the old one). Re-read every `reloadInterval`.',
          ),
      })
      .strict()
      .default({ reloadInterval: 30, activationDelay: 60 })
      .describe('Signing keys: kept in the store (created at first start, rotated by `mcp-authz keys rotate`) unless `file` is set.'),
    secrets: z
      .object({
        cookieKeysFile: z
          .string()
          .min(1)
          .optional()
          .describe(
            'A file of cookie signing keys (env `COOKIE_KEYS_FILE`), e.g. a mounted secret: one key per line (at least 32 characters; `#` comments and blank lines ignored), the first signs, every one verifies. The CSRF key of the forms is derived from the first. Without it the keys are created at first start and kept in the store.',
          ),
      })
      .strict()
      .default({})
      .describe('Server secrets from files instead of the store.'),
    audit: z
      .object({
        sink: z
          .enum(['file', 'stdout', 'redis'])
          .default('file')
          .describe('Where audit records go: JSON lines in `dataDir/audit/`, standard output, or a Redis stream (needs Redis: `redisUrl`, `redisSentinels` or `redisClusterNodes`).'),
        maxFileBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .max(1024 * 1024 * 1024)
          .default(10 * 1024 * 1024)
          .describe('With the file sink, the size at which the current file is rotated (renamed, never deleted).'),
        checkpointEvery: z
          .number()
          .int()
          .min(1)
          .max(100000)
          .default(100)
          .describe("Every this many records, a chain's head (sequence number and hash) is checkpointed in the store, so deleting the newest records is detected."),
        retention: z
          .object({
            maxAge: z.number().int().min(3600).optional().describe('Seconds a rotated file is kept (at least an hour).'),
            maxBytes: z.number().int().min(1024 * 1024).optional().describe('Bytes of rotated files kept in all, the newest (at least 1 MiB).'),
          })
          .strict()
          .optional()
          .describe(
            'With the file sink: rotated files older than `maxAge`, or beyond `maxBytes` in all, are deleted after a rotation, oldest first; what each held of each chain is recorded in the store first, so `audit verify` reports it as retention and still finds any other deletion. Off when absent: nothing is ever deleted.',
          ),
      })
      .strict()
      .default({ sink: 'file', maxFileBytes: 10 * 1024 * 1024, checkpointEvery: 100 })
      .describe('The tamper-evident audit log.'),
    rateLimits: z
      .object({
        signInPerAccountSource: rateLimit('Failed sign-ins per account from one source address (or one browser that signed in to it before), with growing delays', 5, 900),
        signInPerSource: rateLimit('Failed sign-ins per source address, at any accounts, with growing delays', 20, 900),
        signInPerAccount: rateLimit(
          "Failed sign-ins per account from every source together: the account's ceiling against guessing from many addresses. Browsers that signed in to the account before still may; others wait out the window",
          100,
          3600,
        ),
        clientAuthFailuresPerClientSource: rateLimit(
          'Failed client authentications (a wrong secret, a bad `private_key_jwt` assertion) per client id from one source address, at the token, introspection, revocation, pushed authorization and device authorization endpoints, with growing delays',
          10,
          900,
        ),
        clientAuthFailuresPerSource: rateLimit('Failed client authentications per source address, for any clients, with growing delays', 30, 900),
        tokenPerClient: rateLimit('Token requests per client', 600, 60),
        registrationPerSource: rateLimit('Client registrations per source address', 30, 3600),
        userCodesPerSource: rateLimit('Wrong device user codes per source address', 5, 900),
        documentFetchesPerHost: rateLimit('Client metadata document fetches per host', 30, 60),
      })
      .strict()
      .default({
        signInPerAccountSource: { max: 5, window: 900 },
        signInPerSource: { max: 20, window: 900 },
        signInPerAccount: { max: 100, window: 3600 },
        clientAuthFailuresPerClientSource: { max: 10, window: 900 },
        clientAuthFailuresPerSource: { max: 30, window: 900 },
        tokenPerClient: { max: 600, window: 60 },
        registrationPerSource: { max: 30, window: 3600 },
        userCodesPerSource: { max: 5, window: 900 },
        documentFetchesPerHost: { max: 30, window: 60 },
      })
      .describe('Rate limits: in memory for one process, in Redis when the store is Redis (shared by replicas). Over a limit: `429` with `Retry-After`.'),
    refreshTokens: z
      .object({
        reuseGraceWindow: z
          .number()
          .int()
          .min(0)
          .max(60)
          .default(5)
          .describe(
            'Seconds during which a rotated refresh token presented again (a retried or concurrent refresh) gets the same successor instead of an error. Presented later it is treated as stolen: the whole grant is revoked. `0` turns the window off.',
          ),
      })
      .strict()
      .default({ reuseGraceWindow: 5 })
      .describe('Refresh token rotation.'),
    revocationFeed: z
      .object({
        maxConnectionsPerSource: z
          .number()
          .int()
          .min(1)
          .max(10000)
          .default(32)
          .describe(
            'Open connections to the revocation feed (`/revocations`) one source address may hold at once, per server process; more are answered `429`. A verifier holds one.',
          ),
      })
      .strict()
      .default({ maxConnectionsPerSource: 32 })
      .describe('The revocation feed verifiers follow (public, anonymous: it names what it revokes by hashes only).'),
    cimd: z
      .object({
        enabled: z.boolean().default(true).describe('Accept `https` client ids whose metadata document is fetched from that URL.'),
        allowDomains: z
          .array(domainName)
          .default([])
          .describe('When not empty, only documents on these domains (or their subdomains) are fetched.'),
        denyDomains: z.array(domainName).default([]).describe('Documents on these domains (or their subdomains) are never fetched.'),
        timeout: z.number().int().min(100).max(10000).default(3000).describe('Milliseconds a document fetch may take, connection included.'),
        maxBytes: z.number().int().min(512).max(65536).default(8192).describe('Largest document accepted, in bytes.'),
        maxCacheAge: z
          .number()
          .int()
          .min(0)
          .max(86400)
          .default(86400)
          .describe('Longest time, in seconds, a document is cached (its own caching headers may say less).'),
        dangerouslyAllowPrivateNetwork: z
          .boolean()
          .default(false)
          .describe(
            'Fetch documents (and client `jwks_uri`s) from loopback and private addresses, over `http` too. Tests and local development only.',
          ),
        clientCredentials: z
          .array(
            z
              .object({
                domain: domainName.describe('Documents on this domain (or its subdomains).'),
                scopes: z
                  .array(scopeName)
                  .min(1)
                  .describe(
                    'The most a token of such a client may carry; `dangerous` scopes and scopes with an `allow` list only when that list names the client (`client:<document URL>`).',
                  ),
              })
              .strict(),
          )
          .default([])
          .describe(
            'Domains whose metadata documents may declare the client credentials grant (tokens without a person), each with its scope ceiling. Empty by default: a document declaring `client_credentials` is refused.',
          ),
      })
      .strict()
      .default({
        enabled: true,
        allowDomains: [],
        denyDomains: [],
        timeout: 3000,
        maxBytes: 8192,
        maxCacheAge: 86400,
        dangerouslyAllowPrivateNetwork: false,
        clientCredentials: [],
      })
      .describe('Client ID metadata documents (MCP clients identified by an `https` URL).'),
    registration: z
      .object({
        mode: z
          .enum(['open', 'token', 'off'])
          .default('open')
          .describe('Dynamic client registration (RFC 7591): `open` to anyone, `token` with the initial access token, or `off`.'),
        initialAccessToken: z
          .string()
          .min(32, 'must be at least 32 characters')
          .max(512)
          .optional()
          .describe('The bearer token registrations need in `token` mode (env `MCP_AUTHZ_REGISTRATION_TOKEN`).'),
        unusedClientTtl: seconds('How long a registered client that is never used is kept; every use restarts the clock', 30 * 86400, 5 * 365 * 86400),
        clientCredentials: z
          .object({
            scopes: z
              .array(scopeName)
              .min(1)
              .describe('The most a token of such a client may carry: neither `dangerous` scopes nor scopes with an `allow` list can be among them.'),
          })
          .strict()
          .optional()
          .describe(
            'Lets dynamically registered clients use the client credentials grant (tokens without a person), up to `scopes`. Off when absent: registering `client_credentials` is `invalid_client_metadata`. Anyone who can register (with `mode: open`, anyone at all) gets such tokens: prefer `mode: token`.',
          ),
      })
      .strict()
      .default({ mode: 'open', unusedClientTtl: 30 * 86400 })
      .describe('Dynamic client registration.'),
    deviceFlow: z
      .object({
        charset: z.enum(['base-20', 'digits']).default('base-20').describe('Alphabet of user codes.'),
        mask: z
          .string()
          .regex(/^[*-]+$/, 'only `*` (a character) and `-`')
          .refine((m) => (m.match(/\*/g)?.length ?? 0) >= 8, 'at least 8 characters (`*`)')
          .default('****-****')
          .describe('Shape of user codes.'),
        interval: seconds('Minimum polling interval announced to devices', 5, 60),
      })
      .strict()
      .default({ charset: 'base-20', mask: '****-****', interval: 5 })
      .describe('Device authorization grant (RFC 8628).'),
    toolApprovals: toolApprovalsSchema,
  })
  .strict()
  .superRefine((config, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });

    if (config.issuer !== undefined) {
      const url = new URL(config.issuer);
      if (url.search || url.hash) issue(['issuer'], 'must not have a query or fragment');
      if (url.protocol !== 'https:' && url.protocol !== 'http:') issue(['issuer'], 'must be an http(s) URL');
      if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && !config.dangerouslyAllowHttpIssuer) {
        issue(['issuer'], 'must be https (http is allowed only for loopback hosts, or with dangerouslyAllowHttpIssuer)');
      }
    }

    const resourceUris = new Map<string, z.infer<typeof resourceSchema>>();
    const names = new Set<string>();
    config.resources.forEach((resource, i) => {
      if (names.has(resource.uri)) issue(['resources', i, 'uri'], `duplicate resource ${resource.uri}`);
      names.add(resource.uri);
      resourceUris.set(resource.uri, resource);
      resource.aliases.forEach((alias, j) => {
        if (names.has(alias)) issue(['resources', i, 'aliases', j], `${alias} already names a resource`);
        names.add(alias);
      });
      resource.defaultScopes.forEach((scope, j) => {
        if (!(scope in resource.scopes)) issue(['resources', i, 'defaultScopes', j], `"${scope}" is not one of this resource's scopes`);
      });
    });

    const clientIds = new Set<string>();
    config.clients.forEach((client, i) => {
      const at = (...rest: (string | number)[]) => ['clients', i, ...rest];
      if (clientIds.has(client.client_id)) issue(at('client_id'), `duplicate client_id "${client.client_id}"`);
      if (client.client_id === ACCOUNT_CLIENT_ID) issue(at('client_id'), `"${ACCOUNT_CLIENT_ID}" is the account pages' own client; choose another client_id`);
      clientIds.add(client.client_id);

      const method = effectiveAuthMethod(client);
      if ((method === 'client_secret_basic' || method === 'client_secret_post') && !client.client_secret) {
        issue(at('client_secret'), `required for token_endpoint_auth_method ${method}`);
      }
      if (method === 'private_key_jwt' && !client.jwks && !client.jwks_uri) {
        issue(at('jwks'), 'private_key_jwt needs jwks or jwks_uri');
      }
      if (method === 'none' && client.client_secret) {
        issue(at('client_secret'), 'a public client (token_endpoint_auth_method none) has no secret');
      }
      if (method === 'none' && client.grant_types.includes('client_credentials')) {
        issue(at('grant_types'), 'client_credentials needs an authenticated (confidential) client');
      }
      if (client.grant_types.includes('authorization_code') && client.redirect_uris.length === 0) {
        issue(at('redirect_uris'), 'authorization_code needs at least one redirect URI');
      }
      const allowed = client.resources ?? [...resourceUris.keys()];
      client.resources?.forEach((uri, j) => {
        if (!resourceUris.has(uri)) issue(at('resources', j), `${uri} is not a configured resource`);
      });
      if (client.scope) {
        const known = new Set(allowed.flatMap((uri) => Object.keys(resourceUris.get(uri)?.scopes ?? {})));
        for (const scope of client.scope.split(' ')) {
          if (!known.has(scope) && !OIDC_SCOPES.has(scope)) {
            issue(at('scope'), `"${scope}" is not a scope of this client's resources`);
          }
        }
      }
    });

    config.resources.forEach((resource, i) => {
      resource.resourceServerClients.forEach((id, j) => {
        if (!clientIds.has(id)) issue(['resources', i, 'resourceServerClients', j], `"${id}" is not a configured client`);
      });
    });

    // `client:ID` in an allow list names a configured client or a metadata document URL
    config.resources.forEach((resource, i) => {
      for (const [name, scope] of Object.entries(resource.scopes)) {
        scope.allow?.forEach((entry, j) => {
          const id = entry.startsWith('client:') ? entry.slice('client:'.length) : undefined;
          if (id !== undefined && !clientIds.has(id) && !/^https:\/\/[^/]+\/./.test(id)) {
            issue(['resources', i, 'scopes', name, 'allow', j], `"${id}" is not a configured client (nor a metadata document URL)`);
          }
        });
      }
    });

    // machine clients nobody configured: their scope ceiling must name scopes that exist, and
    // registered clients (whose ids nobody knows in advance) can never hold a dangerous or restricted one
    const scopesByName = new Map<string, z.infer<typeof scopeSchema>[]>();
    for (const resource of config.resources) {
      for (const [name, scope] of Object.entries(resource.scopes)) scopesByName.set(name, [...(scopesByName.get(name) ?? []), scope]);
    }
    config.registration.clientCredentials?.scopes.forEach((name, j) => {
      const declared = scopesByName.get(name);
      const at = ['registration', 'clientCredentials', 'scopes', j];
      if (!declared) issue(at, `"${name}" is not a scope of any resource`);
      else if (declared.some((scope) => scope.dangerous || scope.allow)) {
        issue(at, `"${name}" is dangerous or restricted by an allow list: a dynamically registered client can never be granted it`);
      }
    });
    config.cimd.clientCredentials.forEach((entry, i) => {
      entry.scopes.forEach((name, j) => {
        if (!scopesByName.has(name)) issue(['cimd', 'clientCredentials', i, 'scopes', j], `"${name}" is not a scope of any resource`);
      });
    });

    config.toolApprovals.policies.forEach((policy, i) => {
      const at = (key: string) => ['toolApprovals', 'policies', i, key];
      const resource = policy.resource === undefined ? undefined : resourceUris.get(policy.resource);
      if (policy.resource !== undefined && !resource) issue(at('resource'), `${policy.resource} is not a configured resource (give its uri)`);
      if (policy.scope !== undefined) {
        if (resource && !(policy.scope in resource.scopes)) issue(at('scope'), `"${policy.scope}" is not a scope of ${resource.uri}`);
        else if (policy.resource === undefined && !scopesByName.has(policy.scope)) issue(at('scope'), `"${policy.scope}" is not a scope of any resource`);
      }
    });

    if (config.defaultResource !== undefined && !resourceUris.has(config.defaultResource)) {
      issue(['defaultResource'], `${config.defaultResource} is not a configured resource`);
    }

    if (config.registration.mode === 'token' && !config.registration.initialAccessToken) {
      issue(['registration', 'initialAccessToken'], 'required when registration.mode is token');
    }

    if (config.keys.activationDelay !== 0 && config.keys.activationDelay < 2 * config.keys.reloadInterval) {
      issue(['keys', 'activationDelay'], 'must be 0 or at least twice keys.reloadInterval');
    }

    const modes = REDIS_MODES.filter((key) => config[key] !== undefined);
    if (modes.length > 1) {
      for (const key of modes.slice(1)) issue([key], `choose one way to reach Redis: ${modes.join(' and ')} are both set`);
    }
    if (config.redisSentinels !== undefined && config.redisSentinelName === undefined) {
      issue(['redisSentinelName'], 'required with redisSentinels (the master name the Sentinels monitor)');
    }
    if (config.redisSentinelName !== undefined && config.redisSentinels === undefined) {
      issue(['redisSentinelName'], 'only with redisSentinels');
    }
    if (config.redisPassword !== undefined && config.redisPasswordFile !== undefined) {
      issue(['redisPasswordFile'], 'give the Redis password once: redisPassword and redisPasswordFile are both set');
    }
    if (config.redisPassword !== undefined && config.redisUrl !== undefined && URL.canParse(config.redisUrl) && new URL(config.redisUrl).password !== '') {
      issue(['redisPassword'], 'give the Redis password once: redisUrl holds one too');
    }
    if (modes.length === 0) {
      for (const key of ['redisPassword', 'redisPasswordFile'] as const) {
        if (config[key] !== undefined) issue([key], 'set without Redis (redisUrl, redisSentinels or redisClusterNodes)');
      }
      if (config.redisTls) issue(['redisTls'], 'set without Redis (redisUrl, redisSentinels or redisClusterNodes)');
    }
  });

/** OpenID Connect scopes the server understands besides the resources' own. */
export const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access']);

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type ResourceConfig = z.output<typeof resourceSchema>;
export type ClientConfig = z.output<typeof clientSchema>;
export type ScopeConfig = z.output<typeof scopeSchema>;

/** The validated, complete configuration the server runs with. */
export type Config = Omit<ParsedConfig, 'issuer'> & { issuer: string };

export function effectiveAuthMethod(client: ClientConfig): (typeof AUTH_METHODS)[number] {
  if (client.token_endpoint_auth_method) return client.token_endpoint_auth_method;
  if (client.client_secret) return 'client_secret_basic';
  if (client.jwks || client.jwks_uri) return 'private_key_jwt';
  return 'none';
}
