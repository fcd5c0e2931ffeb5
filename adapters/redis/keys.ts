/**
 * Redis key names. Every key starts with the configured prefix so several deployments
 * (or a test run) can share one Redis database.
 *
 * Ids and user codes are bearer values and appear only hashed; grantId, uid, usernames,
 * account ids, setting names and revocation events are not secrets and appear as given (see docs/storage.md).
 * Client ids are not secrets either, but are hashed to bound the key's length; rotation
 * keys arrive hashed from the caller.
 *
 * Redis Cluster: keys used together by one script share a hash tag (`{…}`, the part Redis
 * hashes to pick the slot). A rate-limit key's two keys are tagged with that key's hash; the
 * accounts (a small set whose create and remove must be atomic across username, id and the
 * list of names) share the tag `{accounts}`. Every other operation touches one key at a
 * time, so those keys carry no tag and spread over the whole cluster. The prefix may not
 * contain a brace (src/config/schema.ts): Redis would hash its tag instead.
 */
import { sha256 } from '../hash.js';

/** the hash tag every account key carries (one slot: account, id index and names change together) */
const ACCOUNTS_TAG = '{accounts}';

export class RedisKeys {
  constructor(readonly prefix: string) {
    if (/[{}]/.test(prefix)) throw new TypeError('the Redis key prefix must not contain { or }');
  }

  /** a model record: a hash { p: payload JSON, c?: consumed, g?: grant key, x: index keys JSON } */
  record(model: string, id: string): string {
    return `${this.recordPrefix(model)}${sha256(id)}`;
  }

  /** every record key of `model` starts with this */
  recordPrefix(model: string): string {
    return `${this.prefix}${model}:`;
  }

  /** a set of the record keys carrying this grantId (any model) */
  grant(grantId: string): string {
    return `${this.prefix}grant:${grantId}`;
  }

  /** a string (pointer): the record key of the Session with this uid */
  uid(uid: string): string {
    return `${this.prefix}uid:${uid}`;
  }

  /** a string (pointer): the record key of the DeviceCode with this user code */
  userCode(userCode: string): string {
    return `${this.prefix}userCode:${sha256(userCode)}`;
  }

  /** a hash: one account */
  account(username: string): string {
    return `${this.prefix}account:${ACCOUNTS_TAG}:${username}`;
  }

  /** a string: the username owning this account id */
  accountId(id: string): string {
    return `${this.prefix}accountId:${ACCOUNTS_TAG}:${id}`;
  }

  /** a set of every username, for `list()` */
  accountNames(): string {
    return `${this.prefix}accounts:${ACCOUNTS_TAG}`;
  }

  /** a hash { value, version } */
  setting(name: string): string {
    return `${this.prefix}setting:${name}`;
  }

  /** a stream: the revocation log, one entry { e: event JSON } per revocation */
  revocations(): string {
    return `${this.prefix}revocations`;
  }

  /** a hash: one client directory record, keyed by the hash of its client id (which may be a long URL) */
  client(clientId: string): string {
    return `${this.clientPrefix()}${sha256(clientId)}`;
  }

  /** every client record key starts with this; the index members are what follows it */
  clientPrefix(): string {
    return `${this.prefix}client:`;
  }

  /** a sorted set: the client record key suffixes, scored by expiry (epoch ms, +inf for never), for `list()` */
  clientIndex(): string {
    return `${this.prefix}clients`;
  }

  /** a hash: one grant directory record (grant ids are not secrets) */
  grantRecord(grantId: string): string {
    return `${this.grantRecordPrefix()}${grantId}`;
  }

  /** every grant record key starts with this; the grant index members are what follows it (the grant id) */
  grantRecordPrefix(): string {
    return `${this.prefix}grantRecord:`;
  }

  /** a sorted set: every grant id of the directory, scored by expiry (epoch ms) */
  grantIndex(): string {
    return `${this.prefix}grantRecords`;
  }

  /** a sorted set: the grant ids of one account, scored by expiry (epoch ms) */
  grantsOfAccount(accountId: string): string {
    return `${this.prefix}grantsOfAccount:${accountId}`;
  }

  /** a sorted set: the grant ids of one client (hashed id: it may be a long URL), scored by expiry (epoch ms) */
  grantsOfClient(clientId: string): string {
    return `${this.prefix}grantsOfClient:${sha256(clientId)}`;
  }

  /** a string: one refresh token rotation; `key` is already the caller's hash of the token */
  rotation(key: string): string {
    return `${this.prefix}rotation:${key}`;
  }

  /** a hash: one tool-call approval (its id is random and not a credential) */
  toolApproval(id: string): string {
    return `${this.prefix}toolApproval:${id}`;
  }

  /** a sorted set: the approval ids of one (key, resource, tool, digest), hashed to bound the length, scored by when each is dropped (epoch ms) */
  toolApprovalsFor(key: string, resource: string, tool: string, argumentsDigest: string): string {
    return `${this.prefix}toolApprovalsFor:${sha256(JSON.stringify([key, resource, tool, argumentsDigest]))}`;
  }

  /** a sorted set: the ids of one account's approval requests, scored by when each is dropped (epoch ms) */
  toolApprovalsOfAccount(accountId: string): string {
    return `${this.prefix}toolApprovalsOfAccount:${accountId}`;
  }

  /** a string: present while a person's approval of this tool on this grant is kept (once-per-session policy) */
  toolApprovedOnGrant(grantId: string, resource: string, tool: string): string {
    return `${this.prefix}toolApprovedOnGrant:${sha256(JSON.stringify([grantId, resource, tool]))}`;
  }

  /**
   * One rate-limit key's two keys, tagged with the key's hash (it may hold a username): a sorted
   * set of its recent hits scored by time (epoch ms), and a string holding the epoch ms until
   * which it is held (its growing delay).
   */
  limit(key: string): [hits: string, hold: string] {
    const tag = sha256(key);
    return [`${this.prefix}limit:{${tag}}`, `${this.prefix}limitHold:{${tag}}`];
  }
}
