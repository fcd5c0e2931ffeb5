/**
 * Redis key names. Every key starts with the configured prefix so several deployments
 * (or a test run) can share one Redis database.
 *
 * Ids and user codes are bearer values and appear only hashed; grantId, uid, usernames,
 * account ids, setting names and revocation events are not secrets and appear as given (see docs/storage.md).
 */
import { sha256 } from '../hash.js';

export class RedisKeys {
  constructor(readonly prefix: string) {}

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

  /** a string: the record key of the Session with this uid */
  uid(uid: string): string {
    return `${this.prefix}uid:${uid}`;
  }

  /** a string: the record key of the DeviceCode with this user code */
  userCode(userCode: string): string {
    return `${this.prefix}userCode:${sha256(userCode)}`;
  }

  /** a hash: one account */
  account(username: string): string {
    return `${this.prefix}account:${username}`;
  }

  /** a string: the username owning this account id */
  accountId(id: string): string {
    return `${this.accountIdPrefix()}${id}`;
  }

  accountIdPrefix(): string {
    return `${this.prefix}accountId:`;
  }

  /** a set of every username, for `list()` */
  accountNames(): string {
    return `${this.prefix}accounts`;
  }

  /** a hash { value, version } */
  setting(name: string): string {
    return `${this.prefix}setting:${name}`;
  }

  /** a stream: the revocation log, one entry { e: event JSON } per revocation */
  revocations(): string {
    return `${this.prefix}revocations`;
  }
}
