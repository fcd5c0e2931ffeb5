/**
 * The rate limits (`rateLimits.*`), over the store's counters (adapters/contract.ts
 * `RateCounters`): in the server's memory with SQLite, in Redis (shared by every replica)
 * with Redis. One method per limit builds its key and asks the store; `tooManyRequests` and
 * `tooManyRequestsPage` answer `429`.
 *
 * | limit                    | key                               | counts                                  |
 * |--------------------------|-----------------------------------|-----------------------------------------|
 * | `signInPerAccountSource` | the username and the source address (or the trusted browser) | failed sign-ins (reset by a success) |
 * | `signInPerSource`        | the source address                | failed sign-ins (never reset)           |
 * | `signInPerAccount`       | the username, lowercased          | failed sign-ins from every source: the account's ceiling, passed by its trusted browsers |
 * | `clientAuthFailuresPerClientSource` | the client id and the source address | failed client authentications (reset by a success) |
 * | `clientAuthFailuresPerSource` | the source address           | failed client authentications (never reset) |
 * | `tokenPerClient`         | the client (public: and source)   | token requests, once the client is known|
 * | `registrationPerSource`  | the source address                | registration requests                   |
 * | `userCodesPerSource`     | the source address                | wrong device user codes                 |
 * | `documentFetchesPerHost` | the metadata document's host      | metadata document fetches               |
 *
 * Limits on failures count every attempt up front (one atomic `hit`) and take back those that did
 * not fail, so a burst of concurrent guesses cannot slip through before the first failure is
 * counted. Client credentials that reached a grant lately (see `clientAuth`) are not guesses: they
 * are not counted. Sign-in has growing delays: an attempt while the account+source or the source limit
 * holds is refused before the password is looked at, and doubles that limit's remaining wait (up
 * to an hour).
 *
 * Nobody can lock a person out of their account: failures from one source limit that source
 * (for the account, and overall), not the account. Only failures from many sources together
 * reach the account's ceiling, which lasts its window (no growing delay), and which a browser
 * that has signed in to the account before (src/http/trusted-browser.ts) passes — counted per
 * browser, not per address, so a guesser behind the same address cannot hold it up either.
 *
 * Every refusal is logged as `rate_limit.hit` with the limit, the kind of key, the request id
 * and the source address, plus the account id (never a username or password), client id or
 * host when that is what is limited.
 */
import { hash, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type { RateCounters, RateDecision, RateRule, RateStep } from '../../adapters/contract.js';
import type { Config } from '../config/schema.js';
import { usernameSchema } from '../accounts/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Render } from './render.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';

export type LimitName = keyof Config['rateLimits'];
export type KeyKind = 'account' | 'account+source' | 'source' | 'client' | 'client+source' | 'host';

/** An attempt counted before it is tried: refused, or to be taken back when it turned out right. */
export type Attempt = { refused: Refusal } | { succeeded(): Promise<void> };

/** One limit an attempt counts against. */
interface Check {
  limit: LimitName;
  key: KeyKind;
  counter: string;
  options: { growUpToMs?: number };
  /** on success, forget every failure counted here (else only this attempt) */
  resetOnSuccess?: boolean;
}

/** How long client credentials that reached a grant are known to be right (each use renews it). */
export const ACCEPTED_CREDENTIALS_MS = 5 * 60_000;
/** Most client credentials known to be right at once (the least recently used are forgotten first). */
const MAX_ACCEPTED_CREDENTIALS = 10_000;

/** The longest a growing delay (sign-in, client authentication) gets. */
export const MAX_GROWING_WAIT_MS = 3600_000;

/** A refusal: which limit, and how long until it lets the key through. */
export interface Refusal {
  limit: LimitName;
  key: KeyKind;
  retryAfterMs: number;
}

/** What a `rate_limit.hit` log line may say besides the limit and the source. */
export interface HitDetails {
  accountId?: string;
  clientId?: string;
  host?: string;
}

export class RateLimits {
  readonly #counters: RateCounters;
  readonly #rules: Record<LimitName, RateRule>;
  readonly #log: Logger;
  readonly #audit: AuditLog;
  /** per request (its context), the take-back of a client authentication attempt not yet taken back */
  readonly #pending = new WeakMap<object, RateStep[]>();
  /** digests of client credentials that reached a grant lately → until when (epoch ms), least recent first */
  readonly #accepted = new Map<string, number>();
  /** per request, the digest of the client credentials it presents */
  readonly #presented = new WeakMap<object, string>();
  /** keys those digests (they are of secrets): they mean nothing outside this process */
  readonly #digestKey = randomBytes(32).toString('base64');

  constructor(counters: RateCounters, config: Config['rateLimits'], log: Logger, audit: AuditLog) {
    this.#counters = counters;
    this.#log = log;
    this.#audit = audit;
    const rule = ({ max, window }: { max: number; window: number }): RateRule => ({ max, windowMs: window * 1000 });
    this.#rules = {
      signInPerAccountSource: rule(config.signInPerAccountSource),
      signInPerAccount: rule(config.signInPerAccount),
      clientAuthFailuresPerClientSource: rule(config.clientAuthFailuresPerClientSource),
      clientAuthFailuresPerSource: rule(config.clientAuthFailuresPerSource),
      signInPerSource: rule(config.signInPerSource),
      tokenPerClient: rule(config.tokenPerClient),
      registrationPerSource: rule(config.registrationPerSource),
      userCodesPerSource: rule(config.userCodesPerSource),
      documentFetchesPerHost: rule(config.documentFetchesPerHost),
    };
  }

  /**
   * A sign-in attempt, counted before the password is looked at (atomically: concurrent guesses
   * cannot all pass before the first failure counts) against the account from this source, the
   * source, and the account's ceiling — or, from `trustedBrowser` (the id of a browser that has
   * signed in to this account before), against the account from that browser only. Refused when
   * any of them is limited, with the longest wait; a refused attempt counts nothing and doubles
   * the growing limits' remaining waits (up to an hour). A failed attempt stays counted; call
   * `succeeded` when the password was right.
   */
  async signIn(username: string, source: string, trustedBrowser?: string): Promise<Attempt> {
    const account = signInAccount(username);
    const grow = { growUpToMs: MAX_GROWING_WAIT_MS };
    const checks: Check[] = [
      // Whoever typed the right password knows it: this source's failures at the account are
      // forgotten. The source's own count and the account's ceiling are not (only this attempt
      // is taken back), or signing in to one's own account would reset the count of guesses at
      // others', or at this account from elsewhere.
      {
        limit: 'signInPerAccountSource',
        key: 'account+source',
        counter: `signin:pair:${account}\0${trustedBrowser ? `browser:${trustedBrowser}` : `source:${source}`}`,
        options: grow,
        resetOnSuccess: true,
      },
    ];
    if (!trustedBrowser) {
      checks.push(
        { limit: 'signInPerSource', key: 'source', counter: sourceKey('signin', source), options: grow },
        // the ceiling lasts its window: refused attempts do not extend it
        { limit: 'signInPerAccount', key: 'account', counter: `signin:account:${account}`, options: {} },
      );
    }
    return this.#attempt(checks);
  }

  /**
   * A request that authenticates as `clientId` (a secret or a `private_key_jwt` assertion) from
   * `source`, counted before the engine checks the credentials, against the client from this
   * source and against the source; call `succeeded` unless authentication failed. There is no
   * ceiling per client: failures from some sources never stop the right credentials from others.
   * `request` (the request's context) lets the token limit take the attempt back in the same
   * step as it counts the token (see `token`). Credentials known to be right are not an attempt:
   * ask `knownCredentials` first.
   */
  clientAuth(clientId: string, source: string, request?: object): Promise<Attempt> {
    const grow = { growUpToMs: MAX_GROWING_WAIT_MS };
    return this.#attempt(
      [
        { limit: 'clientAuthFailuresPerClientSource', key: 'client+source', counter: `clientauth:pair:${clientId}\0${source}`, options: grow, resetOnSuccess: true },
        { limit: 'clientAuthFailuresPerSource', key: 'source', counter: sourceKey('clientauth', source), options: grow },
      ],
      request,
    );
  }

  /**
   * Whether `credentials` (what the request presents: its Basic credentials, or its client id and
   * secret) reached a grant in the last {@link ACCEPTED_CREDENTIALS_MS} ms: whoever sends them
   * again is not guessing, so nothing is counted (no `clientAuth`). Only a grant marks them (the
   * engine authenticated them then; an answer that merely is not `invalid_client` may come before
   * authentication), and `clientAuthRejected` forgets them; a guess is a credential never
   * accepted, so it is counted. Either way they are remembered as `request`'s, for `token` and
   * `clientAuthRejected`.
   */
  knownCredentials(request: object, credentials: string): boolean {
    const digest = hash('sha256', `${this.#digestKey}\0${credentials}`, 'base64url');
    this.#presented.set(request, digest);
    const until = this.#accepted.get(digest);
    return until !== undefined && until > Date.now();
  }

  /**
   * One attempt at something that may fail (a password, client credentials), counted against
   * every check at once (one batch of the store's) before it is tried. Refused when any check is
   * limited, with the longest wait; a refused attempt counts nothing (and grows the growing
   * waits). `succeeded` takes the attempt back: a check with `resetOnSuccess` forgets all its
   * failures, the others only this one.
   */
  async #attempt(checks: Check[], request?: object): Promise<Attempt> {
    const decisions = await this.#counters.batch(checks.map((c) => ({ kind: 'hit', key: c.counter, rule: this.#rules[c.limit], ...c.options })));
    const counted = checks.flatMap((check, i) => {
      const hit = decisions[i]?.hit;
      return hit === undefined ? [] : [{ check, hit }];
    });
    if (decisions.every((d) => d?.allowed)) {
      const takeBack: RateStep[] = counted.map(({ check, hit }) => (check.resetOnSuccess ? { kind: 'reset', key: check.counter } : { kind: 'forget', key: check.counter, hit }));
      if (request) this.#pending.set(request, takeBack);
      return {
        succeeded: async () => {
          // taken back already when the request's token was counted (see `token`)
          if (request && this.#pending.get(request) !== takeBack) return;
          if (request) this.#pending.delete(request);
          await this.#counters.batch(takeBack);
        },
      };
    }
    if (counted.length > 0) await this.#counters.batch(counted.map(({ check, hit }) => ({ kind: 'forget', key: check.counter, hit })));
    let refused: Refusal | undefined;
    checks.forEach((c, i) => {
      const d = decisions[i]!;
      if (!d.allowed && (!refused || d.retryAfterMs > refused.retryAfterMs)) refused = { limit: c.limit, key: c.key, retryAfterMs: d.retryAfterMs };
    });
    return { refused: refused! };
  }

  /**
   * An answer an upstream identity provider had the browser at `source` post to us (SAML's
   * assertion consumer service), counted before it is checked as a sign-in attempt from that
   * source (`signInPerSource`, with growing delays): a refused answer stays counted, so garbage
   * posts cannot flood the audit log; call `succeeded` when it was accepted.
   */
  upstreamAnswer(source: string): Promise<Attempt> {
    return this.#attempt([{ limit: 'signInPerSource', key: 'source', counter: sourceKey('signin', source), options: { growUpToMs: MAX_GROWING_WAIT_MS } }]);
  }

  /**
   * One token request of an identified client; `key` from {@link tokenClientKey}. A client
   * identified by the engine has authenticated: when `request` counted a client authentication
   * attempt (`clientAuth`), that attempt is taken back in the same batch as the token is counted
   * (one round trip to Redis instead of two), and its `succeeded` has nothing left to do.
   */
  async token(key: string, request?: object): Promise<RateDecision> {
    // the engine authenticated the request's credentials: they are known to be right
    const digest = request ? this.#presented.get(request) : undefined;
    if (digest !== undefined) this.#accept(digest);
    const takeBack = request ? this.#pending.get(request) : undefined;
    // a budget: a busy client's next tokens may be counted ahead, in shares (adapters/redis/limits.ts)
    if (!takeBack) return this.#counters.hit(key, this.#rules.tokenPerClient, { reserve: true });
    const decisions = await this.#counters.batch([...takeBack, { kind: 'hit', key, rule: this.#rules.tokenPerClient }]);
    this.#pending.delete(request!);
    return decisions[takeBack.length]!;
  }

  /** The engine refused the request's client credentials (`invalid_client`): they are no longer known to be right. */
  clientAuthRejected(request: object): void {
    const digest = this.#presented.get(request);
    if (digest !== undefined) this.#accepted.delete(digest);
  }

  #accept(digest: string): void {
    this.#accepted.delete(digest);
    this.#accepted.set(digest, Date.now() + ACCEPTED_CREDENTIALS_MS);
    if (this.#accepted.size > MAX_ACCEPTED_CREDENTIALS) this.#accepted.delete(this.#accepted.keys().next().value!);
  }

  /** One registration request from `source`. */
  registration(source: string): Promise<RateDecision> {
    return this.#counters.hit(sourceKey('registration', source), this.#rules.registrationPerSource);
  }

  /**
   * An attempt to enter a user code from `source`, counted before the engine looks at it; take
   * it back with `userCodeNotWrong` unless the code turned out wrong (unknown, expired, used).
   */
  userCode(source: string): Promise<RateDecision> {
    return this.#counters.hit(sourceKey('usercode', source), this.#rules.userCodesPerSource);
  }

  async userCodeNotWrong(source: string, hit: string): Promise<void> {
    await this.#counters.forget(sourceKey('usercode', source), hit);
  }

  /** One metadata document fetch from `host` (normalised: src/config/uri.ts normalizeHostname). */
  documentFetch(host: string): Promise<RateDecision> {
    return this.#counters.hit(`cimd:host:${host}`, this.#rules.documentFetchesPerHost);
  }

  /** Logs and audits a refusal as `rate_limit.hit`; `ctx` is absent outside a request. */
  logHit(ctx: Context | undefined, refusal: Refusal, details: HitDetails = {}): void {
    const requestId = (ctx?.state as { requestId?: string } | undefined)?.requestId;
    this.#log.warn(
      {
        event: 'rate_limit.hit',
        limit: refusal.limit,
        key: refusal.key,
        requestId,
        source: ctx?.ip,
        retryAfter: retryAfterSeconds(refusal.retryAfterMs),
        ...details,
      },
      'rate limit hit',
    );
    this.#audit.record({
      event: 'rate_limit.hit',
      outcome: 'failure',
      ...(details.clientId ? { client: details.clientId } : {}),
      ...requestFacts(ctx),
      details: {
        limit: refusal.limit,
        key: refusal.key,
        retryAfter: retryAfterSeconds(refusal.retryAfterMs),
        ...(details.accountId ? { accountId: details.accountId } : {}),
        ...(details.host ? { host: details.host } : {}),
      },
    });
  }
}

/**
 * The token limit's key for a client. A confidential client is counted as itself: only
 * requests it authenticated reach the count. A public client proves nothing but its id, which
 * every installation of the app shares and anyone may send, so it is counted per client and
 * source address: nobody can spend another installation's budget.
 */
export function tokenClientKey(clientId: string, isPublic: boolean, source: string): string {
  return isPublic ? `token:public:${clientId}\0${source}` : `token:client:${clientId}`;
}

/** The account a sign-in names, as its username is stored (lower-cased). */
function signInAccount(username: string): string {
  const parsed = usernameSchema.safeParse(username);
  return parsed.success ? parsed.data : username.toLowerCase();
}

function sourceKey(limit: string, source: string): string {
  return `${limit}:source:${source}`;
}

/** `Retry-After` in whole seconds, at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** "3 seconds", "2 minutes": how long to wait, for a person. */
export function describeWait(ms: number): string {
  const seconds = retryAfterSeconds(ms);
  if (seconds < 120) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minutes`;
}

/** A JSON endpoint's `429`: `Retry-After`, `no-store` and an OAuth error body. */
export function tooManyRequests(ctx: Context, retryAfterMs: number, description: string, error = 'temporarily_unavailable'): void {
  ctx.status = 429;
  ctx.set('Retry-After', String(retryAfterSeconds(retryAfterMs)));
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error, error_description: description };
}

/** A page's `429`: `Retry-After` and the error page saying how long to wait. */
export function tooManyRequestsPage(ctx: Context, render: Render, retryAfterMs: number, title: string, message: string): void {
  ctx.set('Retry-After', String(retryAfterSeconds(retryAfterMs)));
  const requestId = (ctx.state as { requestId?: string }).requestId;
  render(ctx, 'error', { title, message, ...(requestId ? { requestId } : {}) }, 429);
}
