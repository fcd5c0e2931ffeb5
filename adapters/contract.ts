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
}

export interface AccountStore {
  /** Throws {@link AccountExistsError} when the username is taken. */
  create(record: AccountRecord): Promise<void>;
  findByUsername(username: string): Promise<AccountRecord | undefined>;
  findById(id: string): Promise<AccountRecord | undefined>;
  /** All accounts, ordered by username. */
  list(): Promise<AccountRecord[]>;
  /** Returns false when no such account exists. */
  update(username: string, patch: { passwordHash?: string; roles?: string[] }): Promise<boolean>;
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

export interface Store {
  readonly kind: 'sqlite' | 'redis';
  /** the oidc-provider adapter for one model; the same instance for the same name */
  model(name: string): ModelAdapter;
  readonly accounts: AccountStore;
  readonly settings: SettingsStore;
  readonly revocations: RevocationLog;
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

/** Models whose id must stay recoverable from a secondary index (findByUid / findByUserCode). */
export const MODELS_KEEPING_ID = new Set(['Session', 'DeviceCode']);
