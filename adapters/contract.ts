/**
 * The storage contract every store (SQLite, Redis) implements.
 *
 * Three parts:
 * - `model(name)`: oidc-provider's Adapter contract, one instance per model
 *   (AccessToken, AuthorizationCode, RefreshToken, DeviceCode, ClientCredentials,
 *   Client, InitialAccessToken, RegistrationAccessToken, Interaction, ReplayDetection,
 *   PushedAuthorizationRequest, Grant, BackchannelAuthenticationRequest, Session).
 * - `accounts`: local user accounts (username, password hash, roles).
 * - `settings`: small named, versioned records (signing keys, cookie secrets) with
 *   create-if-absent and compare-and-swap, so replicas sharing a store converge.
 * - `clients`: the directory of clients seen (static, CIMD, registered) and their last use.
 * - `rotations`: who rotates a refresh token, and the answer a retry within the grace
 *   window gets, claimed atomically across replicas.
 * - `grants`: the directory of grants (who allowed which client, when, last use), for the
 *   "connected apps" page and `mcp-authz grants`.
 * - `limits`: sliding-window rate counters, shared by every replica of a Redis store.
 * - `toolApprovals`: per-call tool approvals (src/tool-approvals), asked of a person and
 *   redeemed once.
 *
 * Nothing here imports koa or oidc-provider: data flows down, never up.
 */

/** A model payload as oidc-provider hands it to the adapter (JSON-serialisable). */
export interface AdapterPayload {
  [key: string]: unknown;
  /** the model's id; for opaque tokens this *is* the bearer value */
  jti?: string;
  kind?: string;
  grantId?: string;
  userCode?: string;
  uid?: string;
  /** set by `consume()`: epoch seconds */
  consumed?: number;
  exp?: number;
  iat?: number;
}

/**
 * oidc-provider's adapter interface (see oidc-provider `example/my_adapter.js`).
 *
 * Storage rules every implementation follows:
 * - records are keyed by `sha256(id)`; the id (a bearer value for most models) is
 *   kept in the clear only for Session and DeviceCode, whose `findByUid` /
 *   `findByUserCode` must return a payload carrying its `jti`;
 * - `expiresIn` (seconds) bounds the record's life; an expired record is never returned
 *   and is eventually deleted;
 * - `userCode` is indexed by its hash, `uid` as given, `grantId` as given.
 */
export interface ModelAdapter {
  upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void>;
  find(id: string): Promise<AdapterPayload | undefined>;
  findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
  findByUid(uid: string): Promise<AdapterPayload | undefined>;
  /**
   * Marks the record consumed (`consumed` = epoch seconds), atomically.
   * Throws {@link AlreadyConsumedError} when the record was already consumed, so that of
   * any number of concurrent callers exactly one succeeds. A missing record is a no-op.
   */
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  /** Removes every record (of this model) carrying this grantId. */
  revokeByGrantId(grantId: string): Promise<void>;
}

export interface AccountRecord {
  /** stable random identifier, used as the token `sub` */
  id: string;
  username: string;
  /** encoded password hash, see src/accounts/password.ts */
  passwordHash: string;
  roles: string[];
  /** epoch milliseconds */
  createdAt: number;
  updatedAt: number;
  /**
   * The sign-in connection (upstream OIDC, SAML or LDAP, see src/connections) that provisioned
   * this account; absent for a local account. Set on create, never changed.
   */
  connection?: string;
  /** as last given by the connection (or set by an operator); absent when unknown */
  displayName?: string;
  email?: string;
  /**
   * The account's second factors (TOTP, passkeys, recovery codes) as JSON text owned by
   * src/accounts/second-factors.ts; the store only keeps it. Absent when none is enrolled.
   */
  secondFactors?: string;
}

/**
 * What `AccountStore.update` may change. An empty string clears an optional text field
 * (`displayName`, `email`, `secondFactors`): stores read an empty value back as absent.
 */
export interface AccountPatch {
  passwordHash?: string;
  roles?: string[];
  displayName?: string;
  email?: string;
  secondFactors?: string;
}

export interface AccountStore {
  /** Throws {@link AccountExistsError} when the username is taken. */
  create(record: AccountRecord): Promise<void>;
  findByUsername(username: string): Promise<AccountRecord | undefined>;
  findById(id: string): Promise<AccountRecord | undefined>;
  /** All accounts, ordered by username. */
  list(): Promise<AccountRecord[]>;
  /** Returns false when no such account exists. */
  update(username: string, patch: AccountPatch): Promise<boolean>;
  /** Returns false when no such account exists. */
  remove(username: string): Promise<boolean>;
}

export interface SettingRecord {
  /** the raw stored text; callers parse and validate it */
  value: string;
  /** starts at 1, incremented by every successful `replace` */
  version: number;
}

export interface SettingsStore {
  get(name: string): Promise<SettingRecord | undefined>;
  /** Stores the value only if the name is absent. Returns true when this call created it. */
  create(name: string, value: string): Promise<boolean>;
  /** Compare-and-swap: replaces only when the stored version equals `expectedVersion`. */
  replace(name: string, expectedVersion: number, value: string): Promise<boolean>;
}

/**
 * A revocation verifiers must learn about. `until` (epoch seconds) is when it stops
 * mattering: the latest expiry of any token it can affect; the log forgets it afterwards.
 */
export type RevocationEvent =
  | { type: 'token'; jti: string; until: number }
  | { type: 'grant'; grantId: string; until: number }
  /** every token of this subject issued at or before `before` (epoch seconds) */
  | { type: 'subject'; sub: string; before: number; until: number };

export interface RevocationEntry {
  /** opaque, increasing in append order across every process sharing the store */
  id: string;
  event: RevocationEvent;
}

/**
 * The ordered, shared log behind the revocation feed. Appends from any process (a server
 * replica, the CLI) are read by every server, which streams them to verifiers.
 */
export interface RevocationLog {
  append(event: RevocationEvent): Promise<string>;
  /**
   * Entries after `afterId` (all retained entries when undefined), oldest first, at most
   * `limit`, skipping those whose `until` has passed. When none are available and `waitMs`
   * is given, waits up to that long for the next append before answering (empty if none).
   * An `afterId` older than what is retained answers from the oldest retained entry.
   */
  readAfter(afterId: string | undefined, limit: number, waitMs?: number): Promise<RevocationEntry[]>;
  /** Deletes entries whose `until` has passed. */
  prune(nowSeconds: number): Promise<void>;
}

/** How a client came to be known: configuration, a client ID metadata document, or RFC 7591 registration. */
export type ClientKind = 'static' | 'cimd' | 'dcr';

export interface ClientRecord {
  clientId: string;
  kind: ClientKind;
  /** the client's self-asserted name, if any */
  name?: string;
  /** epoch milliseconds */
  createdAt: number;
  /** epoch milliseconds of the last authorization or token request; absent when never used */
  lastUsedAt?: number;
}

export interface ClientDirectory {
  /** Creates or replaces the record, kept until `expiresAt` (epoch milliseconds) or forever when undefined. */
  put(record: ClientRecord, expiresAt?: number): Promise<void>;
  get(clientId: string): Promise<ClientRecord | undefined>;
  /** Every unexpired record, ordered by clientId. */
  list(): Promise<ClientRecord[]>;
  /** Returns false when no such record exists. */
  remove(clientId: string): Promise<boolean>;
}

/** One grant: a person's consent to a client, as the "connected apps" page and the CLI list it. */
export interface GrantRecord {
  /** oidc-provider's Grant id (the `grant_id` claim of the grant's access tokens); not a secret */
  grantId: string;
  /** the account that gave the grant (the tokens' `sub`) */
  accountId: string;
  clientId: string;
  /** epoch milliseconds */
  createdAt: number;
  /** epoch milliseconds of the last token request on this grant; absent when never used */
  lastUsedAt?: number;
}

export interface GrantFilter {
  accountId?: string;
  clientId?: string;
}

/**
 * The directory of grants, kept beside oidc-provider's own Grant records (which cannot be
 * listed by account or client). Every record expires (with its Grant).
 */
export interface GrantDirectory {
  /** Creates or replaces the record, kept until `expiresAt` (epoch milliseconds). */
  put(record: GrantRecord, expiresAt: number): Promise<void>;
  get(grantId: string): Promise<GrantRecord | undefined>;
  /** Every unexpired record matching every given field, newest `createdAt` first (ties by grantId). */
  list(filter?: GrantFilter): Promise<GrantRecord[]>;
  /**
   * Sets `lastUsedAt` to `at` when the record exists and `at` is later than its current value
   * (never moves it backwards; never creates a record; leaves the expiry alone).
   */
  touch(grantId: string, at: number): Promise<void>;
  /** Returns false when no such (unexpired) record exists. */
  remove(grantId: string): Promise<boolean>;
}

/** Where a tool-call approval stands (src/tool-approvals). `closed`: a refusal or expiry already answered. */
export type ToolApprovalStatus = 'pending' | 'approved' | 'denied' | 'redeemed' | 'closed';

/**
 * A request to run one MCP tool call with these arguments, for a person to approve or refuse:
 * bound to the grant (or, without a person, the client), the MCP server, the tool and the
 * digest of the canonical arguments. The summary is what the person is shown.
 */
export interface ToolApprovalRecord {
  /** random; also the context id a client echoes when it retries the call */
  id: string;
  resource: string;
  tool: string;
  argumentsDigest: string;
  summary: string;
  clientId: string;
  grantId?: string;
  accountId?: string;
  status: ToolApprovalStatus;
  /** who approved: the person on the approval page, or a policy (`never`, `once_per_session`) */
  decidedBy?: 'person' | 'policy';
  /** whether the person confirmed a second factor for this approval */
  secondFactor?: boolean;
  createdAt: number;
  /** epoch ms after which a pending request can no longer be decided */
  expiresAt: number;
  decidedAt?: number;
  redeemedAt?: number;
}

/** The key an open approval is found by: the grant, or `client:<id>` for a token without one. */
export type ToolApprovalKey = string;

/** The {@link ToolApprovalKey} of a record (or of the token a call carried). */
export function toolApprovalKey(of: { grantId?: string | undefined; clientId: string }): ToolApprovalKey {
  return of.grantId ?? `client:${of.clientId}`;
}

/** How long an approval record is kept past its `expiresAt` (ms): a day. */
export const TOOL_APPROVAL_RETENTION_MS = 86_400_000;

/**
 * Tool-call approvals, shared by every replica. Records are kept a day past `expiresAt`, then
 * dropped. Every state change is atomic: of concurrent callers exactly one succeeds.
 */
export interface ToolApprovalStore {
  create(record: ToolApprovalRecord): Promise<void>;
  get(id: string): Promise<ToolApprovalRecord | undefined>;
  /** The newest record for (key, resource, tool, digest) whose status is pending, approved or denied. */
  findOpen(key: ToolApprovalKey, resource: string, tool: string, argumentsDigest: string): Promise<ToolApprovalRecord | undefined>;
  /** The account's pending, unexpired requests at `now`, newest first, at most 50. */
  listPending(accountId: string, now: number): Promise<ToolApprovalRecord[]>;
  /** pending and unexpired at `at` → `decision`; false otherwise (already decided, expired, unknown). */
  decide(id: string, decision: 'approved' | 'denied', change: { at: number; decidedBy: 'person' | 'policy'; secondFactor?: boolean }): Promise<boolean>;
  /** approved → redeemed; false otherwise (only one caller ever redeems a record). */
  redeem(id: string, at: number): Promise<boolean>;
  /**
   * Any status → closed (a refusal or expiry has been answered). True only for the one caller
   * that closed it (false: unknown, or closed already), so an answer is given once.
   */
  close(id: string): Promise<boolean>;
  /** Whether the person approved `tool` of `resource` on this grant before (once-per-session policy). */
  approvedBefore(grantId: string, resource: string, tool: string): Promise<boolean>;
}

/**
 * Serialises the rotation of one refresh token across every process sharing the store.
 * `key` is a hash of the token, never the token.
 */
export interface RefreshRotations {
  /** Of any number of concurrent callers for the same key, exactly one gets true; the claim lasts `ttlSeconds`. */
  claim(key: string, ttlSeconds: number): Promise<boolean>;
  /** Records the (sealed) answer of the claimed rotation, kept `ttlSeconds` from now. */
  settle(key: string, outcome: string, ttlSeconds: number): Promise<void>;
  /** undefined: never claimed (or expired); `{}`: claimed, not settled yet; `{ outcome }`: settled. */
  get(key: string): Promise<{ outcome?: string } | undefined>;
  /** Drops a claim that will not be settled, so the next caller may claim again. */
  release(key: string): Promise<void>;
}

/** At most `max` hits per key in any `windowMs` (a sliding window). */
export interface RateRule {
  max: number;
  windowMs: number;
}

export interface RateDecision {
  allowed: boolean;
  /** 0 when allowed; else how long (ms, > 0) until the key may go on */
  retryAfterMs: number;
  /** when allowed: the hit that was counted, for {@link RateCounters.forget} */
  hit?: string;
}

/** One step of {@link RateCounters.batch}: what `hit`, `forget` or `reset` does on its own. */
export type RateStep =
  | { kind: 'hit'; key: string; rule: RateRule; growUpToMs?: number }
  | { kind: 'forget'; key: string; hit: string }
  | { kind: 'reset'; key: string };

/**
 * Per-key sliding-window counters behind the rate limits (src/http/limits.ts). A key is an
 * opaque string (stores keep only its hash where it is stored).
 *
 * `hit` decides and counts in one atomic step, so of any number of concurrent hits exactly
 * `max` per window are allowed (across every replica sharing a Redis store). A limit on
 * failures (sign-in, user codes) counts each attempt with `hit` before trying it and, when the
 * attempt turns out not to have failed, takes it back with `forget`: concurrent attempts
 * cannot all slip through before the first failure is counted.
 *
 * Besides its hits, a key may carry a hold: the growing delay of a key that keeps trying while
 * limited (`growUpToMs`). Every decision answers the longer of the window's wait and the hold.
 * `now` (epoch ms, default the current time) exists for tests; callers on several hosts rely on
 * their clocks agreeing, as token expiry does.
 *
 * The SQLite store keeps its counters in the memory of the process that opened it (the one
 * server of a single-node deployment): they start empty after a restart. The Redis store keeps
 * them in Redis, where each key expires with its window.
 */
export interface RateCounters {
  /**
   * Counts one hit against `key` unless that would exceed the rule; a refused hit counts
   * nothing. With `growUpToMs`, a refused hit (an attempt while limited) doubles the remaining
   * wait, up to `growUpToMs` (never shortening a longer one), and answers the doubled wait.
   *
   * With `reserve` (a budget, not a count of failures: never with `growUpToMs`), a store shared
   * by replicas may reserve a busy key's next hits in this one ahead, in small shares that last
   * a moment, and answer them without asking anyone (Redis: adapters/redis/limits.ts). At most
   * `max` hits a window still pass; a share's unused hits may refuse another replica's hit
   * until the share ends (at most 100 ms) and stretch a refusal's wait by as much.
   */
  hit(key: string, rule: RateRule, options?: { growUpToMs?: number; now?: number; reserve?: boolean }): Promise<RateDecision>;
  /** Takes back one counted hit (`RateDecision.hit`); a no-op when it is gone already. */
  forget(key: string, hit: string): Promise<void>;
  /** Forgets every hit of `key`, and its hold. */
  reset(key: string): Promise<void>;
  /**
   * Several steps, in order, each with the effect its own method has; answers, step by step, the
   * decision of each `hit` and undefined for the others. The steps are taken in one go (SQLite:
   * without yielding; Redis: one script call, so one round trip, all of it atomic) — except on a
   * Redis Cluster, where the keys lie in different slots and each step is atomic on its own. What
   * a request that counts several things costs (src/http/limits.ts).
   */
  batch(steps: readonly RateStep[], options?: { now?: number }): Promise<(RateDecision | undefined)[]>;
}

export interface Store {
  readonly kind: 'sqlite' | 'redis';
  /** the oidc-provider adapter for one model; the same instance for the same name */
  model(name: string): ModelAdapter;
  readonly accounts: AccountStore;
  readonly settings: SettingsStore;
  readonly revocations: RevocationLog;
  readonly clients: ClientDirectory;
  readonly rotations: RefreshRotations;
  readonly grants: GrantDirectory;
  readonly limits: RateCounters;
  readonly toolApprovals: ToolApprovalStore;
  /** Resolves when the store answers; rejects with a readable error otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Thrown by `consume()` when the record had already been consumed. */
export class AlreadyConsumedError extends Error {
  override readonly name = 'AlreadyConsumedError';
  constructor(readonly model: string) {
    super(`${model} already consumed`);
  }
}

export class AccountExistsError extends Error {
  override readonly name = 'AccountExistsError';
  constructor(readonly username: string) {
    super(`an account named "${username}" already exists`);
  }
}

/** Thrown when a store cannot be opened or a stored record cannot be read. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}

/**
 * Whether `err` says the store cannot be reached right now (a condition that passes), as
 * opposed to a bug or a bad record: Redis down, restarting or not answering in time (the
 * client's connection errors), a Redis Cluster or Sentinel set without a reachable master,
 * SQLite busy or locked by another process. Requests that meet
 * it are answered `503` with `Retry-After`, never `500`.
 */
export function isStoreUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { name, message } = err;
  const code = (err as { code?: unknown }).code;
  return (
    name === 'MaxRetriesPerRequestError' ||
    code === 'SQLITE_BUSY' ||
    code === 'SQLITE_LOCKED' ||
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    /^(Connection is closed\.|Command timed out|Stream isn't writeable)/.test(message) ||
    // a Redis Cluster without a reachable node or with slots unserved, a Sentinel set without a master,
    // a server still loading its data after a restart, a master just demoted by a failover
    /^(Cluster isn't ready|None of startup nodes is available|Failed to refresh slots cache|CLUSTERDOWN |All sentinels are unreachable|LOADING |READONLY |MASTERDOWN )/.test(message)
  );
}

/** Models whose id must stay recoverable from a secondary index (findByUid / findByUserCode). */
export const MODELS_KEEPING_ID = new Set(['Session', 'DeviceCode']);
