/**
 * Follows the authorization server's revocation feed and answers "is this token revoked?"
 * with map lookups.
 *
 * Feed protocol (`GET <feed>` with `Accept: text/event-stream`, `Last-Event-ID` on reconnect):
 *   event: revocation  id: <opaque>  data: {"type":"token","hash":…,"until":<s>}
 *                                        | {"type":"grant","hash":…,"until":<s>}
 *                                        | {"type":"subject","hash":…,"before":<s>,"until":<s>}
 *   event: heartbeat   data: {"time":<ms>}      every few seconds
 *   event: ready       once the backlog has been sent
 *   event: reconnect   the server process is shutting down: the stream ends, and the verifier
 *                      reconnects at once (to another replica) rather than after a backoff
 * The feed is public (a verifier needs nothing but the issuer to follow it), so it names
 * nothing: `hash` is {@link revocationHash} of the token's `jti`, the grant id (`grant_id`) or
 * the subject (`sub`). Only someone holding a token with that claim can tell what an entry
 * revokes; the identifiers are random, so the hashes cannot be reversed. `until` is when an
 * entry stops mattering (every token it affects has expired); entries are forgotten after it.
 * The feed is fresh while some event arrived within `staleAfter`.
 */
import { z } from 'zod';
import { readEventStream, type ServerSentEvent } from './sse.js';
import type { FetchLike } from './types.js';
import { nowSeconds, sha256Base64url, sha256Base64urlNow, sleep, unrefTimer } from './util.js';

/** What a revocation is about: a token (by `jti`), a grant (`grant_id`), or a subject's tokens (`sub`). */
export type RevocationKind = 'token' | 'grant' | 'subject';

/** Domain separation of the feed's hashes; the authorization server hashes with the same (src/revocation/feed-events.ts). */
export const REVOCATION_HASH_PREFIX = 'mcp-authz revocation v1\0';

const HASH = z.string().regex(/^[A-Za-z0-9_-]{43}$/);

const RevocationEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('token'), hash: HASH, until: z.number() }),
  z.object({ type: z.literal('grant'), hash: HASH, until: z.number() }),
  z.object({ type: z.literal('subject'), hash: HASH, before: z.number(), until: z.number() }),
]);

/** One revocation as the feed sends it. */
export type RevocationEvent = z.infer<typeof RevocationEventSchema>;

/** base64url SHA-256 of the domain prefix, the kind and the identifier: how the feed names what it revokes. */
export async function revocationHash(kind: RevocationKind, identifier: string): Promise<string> {
  return sha256Base64url(`${REVOCATION_HASH_PREFIX}${kind}\0${identifier}`);
}

/** One entry of a {@link RevokedSet}: what is revoked, under whatever key its holder uses. */
export type RevokedEntry =
  | { type: 'token' | 'grant'; key: string; until: number }
  /** every token of this subject issued at or before `before` (epoch seconds) */
  | { type: 'subject'; key: string; before: number; until: number };

/** The keys a token is looked up by: its `jti`, `grant_id` and `sub` (hashed, for the feed), and its `iat`. */
export interface RevocableKeys {
  token?: string | undefined;
  grant?: string | undefined;
  subject?: string | undefined;
  iat?: unknown;
}

/** The claims a revocation can match. */
export interface RevocableClaims {
  jti?: unknown;
  grant_id?: unknown;
  sub?: unknown;
  iat?: unknown;
}

/**
 * A token's keys as the feed names them: the hashes of its claims. Hashes only the kinds
 * `revoked` has entries of, so a verifier with nothing revoked does no hashing.
 */
export async function feedKeys(claims: RevocableClaims, revoked: RevokedSet): Promise<RevocableKeys> {
  const { tokens, grants, subjects } = revoked.size;
  const wanted: [RevocationKind, unknown][] = [
    ['token', tokens > 0 ? claims.jti : undefined],
    ['grant', grants > 0 ? claims.grant_id : undefined],
    ['subject', subjects > 0 ? claims.sub : undefined],
  ];
  const inputs = wanted.map(([kind, value]) => (typeof value === 'string' ? `${REVOCATION_HASH_PREFIX}${kind}\0${value}` : undefined));
  // a token is checked many times (an agent calling tools in a loop): its hashes are remembered;
  // else synchronous where the runtime allows (one hash ~1 µs), else Web Crypto
  let hashes = inputs.map((input) => (input === undefined ? undefined : (HASHES.get(input) ?? sha256Base64urlNow(input))));
  if (hashes.some((hash, i) => hash === undefined && inputs[i] !== undefined)) {
    hashes = await Promise.all(inputs.map((input) => (input === undefined ? undefined : sha256Base64url(input))));
  }
  inputs.forEach((input, i) => {
    if (input === undefined || HASHES.has(input)) return;
    if (HASHES.size >= MAX_REMEMBERED_HASHES) HASHES.clear();
    HASHES.set(input, hashes[i]!);
  });
  const [token, grant, subject] = hashes;
  return { token, grant, subject, iat: claims.iat };
}

/** Claim hashes already computed (identifiers of tokens seen, not tokens), forgotten all at once when full. */
const HASHES = new Map<string, string>();
const MAX_REMEMBERED_HASHES = 30_000;

/** What is revoked right now: tokens, grants, and per subject the issue time at or before which its tokens are revoked. */
export class RevokedSet {
  readonly #tokens = new Map<string, number>();
  readonly #grants = new Map<string, number>();
  readonly #subjects = new Map<string, { before: number; until: number }>();

  add(entry: RevokedEntry, now = nowSeconds()): void {
    if (entry.until < now) return;
    if (entry.type === 'subject') {
      // merging keeps the later `before` for the later `until`: tokens issued by the earlier
      // `before` expire by its `until`, so the merge never revokes a token neither event did
      const prev = this.#subjects.get(entry.key);
      this.#subjects.set(entry.key, { before: Math.max(entry.before, prev?.before ?? -Infinity), until: Math.max(entry.until, prev?.until ?? 0) });
      return;
    }
    const map = entry.type === 'token' ? this.#tokens : this.#grants;
    map.set(entry.key, Math.max(entry.until, map.get(entry.key) ?? 0));
  }

  isRevoked(keys: RevocableKeys, now = nowSeconds()): boolean {
    if (keys.token !== undefined && (this.#tokens.get(keys.token) ?? -1) >= now) return true;
    if (keys.grant !== undefined && (this.#grants.get(keys.grant) ?? -1) >= now) return true;
    if (keys.subject !== undefined && this.#subjects.size) {
      const subject = this.#subjects.get(keys.subject);
      // a token without `iat` cannot show it was issued after the cut-off
      if (subject && subject.until >= now) return typeof keys.iat !== 'number' || keys.iat <= subject.before;
    }
    return false;
  }

  /** Drops entries whose `until` has passed. */
  prune(now = nowSeconds()): void {
    for (const [key, until] of this.#tokens) if (until < now) this.#tokens.delete(key);
    for (const [key, until] of this.#grants) if (until < now) this.#grants.delete(key);
    for (const [key, entry] of this.#subjects) if (entry.until < now) this.#subjects.delete(key);
  }

  get size(): { tokens: number; grants: number; subjects: number } {
    return { tokens: this.#tokens.size, grants: this.#grants.size, subjects: this.#subjects.size };
  }
}

/** A snapshot of the feed, e.g. for a readiness probe. */
export interface RevocationStatus {
  /**
   * The authorization server advertises no revocation feed and `revocation.required` is false:
   * revocation is not checked (revoked tokens are accepted until they expire).
   */
  absent: boolean;
  /** why the feed cannot be followed right now (the last connection error), if it cannot */
  problem: string | undefined;
  /** a feed connection is open */
  connected: boolean;
  /** the backlog has been received at least once */
  ready: boolean;
  /** revocations can be trusted right now (ready, and an event within `staleAfter`) */
  fresh: boolean;
  /** epoch ms of the last event or heartbeat */
  lastEventAt: number | undefined;
  lastEventId: string | undefined;
  /** reconnections so far */
  reconnects: number;
  revoked: { tokens: number; grants: number; subjects: number };
}

export interface RevocationFeedOptions {
  /** resolves the feed URL (configured, or from the AS metadata); undefined when the AS advertises none */
  feedUrl: () => Promise<string | undefined>;
  /** without a feed URL: refuse (true), or go on without revocation after a warning (false) */
  required: boolean;
  fetch: FetchLike;
  staleAfterMs: number;
  /** connection problems and warnings, for logs */
  report: (error: Error) => void;
}

/** The authorization server names no feed: a configuration problem, reported as such. */
export class FeedNotAdvertisedError extends Error {
  override readonly name = 'FeedNotAdvertisedError';
}

const INITIAL_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5000;
const PRUNE_EVERY_S = 60;

/** The feed client: one connection at a time, reconnecting with backoff and `Last-Event-ID`. */
export class RevocationFeed {
  readonly revoked = new RevokedSet();
  readonly #options: RevocationFeedOptions;
  readonly #closed = new AbortController();
  #running: Promise<void> | undefined;
  #connected = false;
  #ready = false;
  #absent = false;
  /** the last connection error, until the next event */
  #problem: Error | undefined;
  #readyWaiters: ((ready: boolean) => void)[] = [];
  #lastEventAt: number | undefined;
  #lastEventId: string | undefined;
  #reconnects = 0;
  /** the server asked for a reconnection (it is shutting down) */
  #reconnectAsked = false;
  #lastImmediateAt = 0;
  #lastPrune = nowSeconds();

  constructor(options: RevocationFeedOptions) {
    this.#options = options;
  }

  /** Starts following the feed (idempotent). */
  start(): void {
    if (this.#running || this.#closed.signal.aborted) return;
    this.#running = this.#run();
  }

  /** Whether revocations are known up to the last `staleAfter`. One comparison, for the hot path. */
  get fresh(): boolean {
    return this.#ready && this.#lastEventAt !== undefined && Date.now() - this.#lastEventAt <= this.#options.staleAfterMs;
  }

  /** the backlog was received, or there is no feed to wait for (see {@link absent}) */
  get ready(): boolean {
    return this.#ready || this.#absent;
  }

  /** The AS advertises no feed and none is required: nothing is revoked, ever. */
  get absent(): boolean {
    return this.#absent;
  }

  /** Why revocations cannot be trusted right now, for the log line of a refusal. */
  get problem(): string | undefined {
    return this.#problem?.message;
  }

  /**
   * Resolves true once the backlog was received (or there is no feed to wait for), false after
   * `timeoutMs`, or at once when the AS advertises no feed and one is required.
   */
  waitReady(timeoutMs: number): Promise<boolean> {
    if (this.ready) return Promise.resolve(true);
    if (this.#problem instanceof FeedNotAdvertisedError) return Promise.resolve(false);
    this.start();
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      unrefTimer(timer);
      this.#readyWaiters.push((ready) => {
        clearTimeout(timer);
        resolve(ready);
      });
    });
  }

  status(): RevocationStatus {
    return {
      absent: this.#absent,
      problem: this.problem,
      connected: this.#connected,
      ready: this.#ready,
      fresh: this.fresh,
      lastEventAt: this.#lastEventAt,
      lastEventId: this.#lastEventId,
      reconnects: this.#reconnects,
      revoked: this.revoked.size,
    };
  }

  async close(): Promise<void> {
    this.#closed.abort();
    await this.#running;
  }

  async #run(): Promise<void> {
    let backoff = INITIAL_BACKOFF_MS;
    for (let attempt = 0; !this.#closed.signal.aborted; attempt++) {
      if (attempt > 0) {
        // asked to reconnect by a server going away: at once, unless that happened a moment ago
        const immediate = this.#reconnectAsked && Date.now() - this.#lastImmediateAt > 1000;
        this.#reconnectAsked = false;
        if (immediate) this.#lastImmediateAt = Date.now();
        else {
          await sleep(backoff, this.#closed.signal);
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        }
        if (this.#closed.signal.aborted) break;
        this.#reconnects++;
      }
      const connection = new AbortController();
      const abort = () => connection.abort();
      this.#closed.signal.addEventListener('abort', abort, { once: true });
      // a connection that stays silent longer than `staleAfter` is dead: drop it and reconnect
      let watchdog: ReturnType<typeof setTimeout> | undefined;
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(abort, this.#options.staleAfterMs);
        unrefTimer(watchdog);
      };
      let url: string | undefined;
      try {
        url = await this.#options.feedUrl();
        if (url === undefined) {
          if (!this.#options.required) {
            this.#absent = true;
            this.#options.report(
              new FeedNotAdvertisedError(
                'WARNING: the authorization server advertises no revocation feed (revocation_feed_endpoint) and revocation.required is false: revoked tokens are accepted until they expire',
              ),
            );
            this.#wake(true);
            return;
          }
          throw new FeedNotAdvertisedError(
            'the authorization server advertises no revocation feed (revocation_feed_endpoint): every token is refused (503). Point the verifier at an authorization server with a feed, set revocation.feedUrl, or accept revoked tokens until they expire with revocation: { required: false } or revocation: false',
          );
        }
        const headers: Record<string, string> = { accept: 'text/event-stream', 'cache-control': 'no-store' };
        if (this.#lastEventId !== undefined) headers['last-event-id'] = this.#lastEventId;
        arm();
        const response = await this.#options.fetch(url, { headers, signal: connection.signal, redirect: 'manual' });
        const type = response.headers.get('content-type') ?? '';
        if (response.status !== 200 || !response.body || !type.toLowerCase().startsWith('text/event-stream')) {
          await response.body?.cancel();
          throw new Error(`revocation feed answered HTTP ${response.status} (${type || 'no content type'})`);
        }
        this.#connected = true;
        await readEventStream(response.body, (event) => {
          arm();
          backoff = INITIAL_BACKOFF_MS;
          this.#onEvent(event);
        });
        if (this.#reconnectAsked) continue;
        if (!this.#closed.signal.aborted) throw new Error('revocation feed connection closed');
      } catch (err) {
        if (!this.#closed.signal.aborted) {
          const error = err instanceof Error ? err : new Error(String(err));
          this.#problem = error instanceof FeedNotAdvertisedError ? error : new Error(`revocation feed${url ? ` ${url}` : ''}: ${error.message} (retrying)`, { cause: error });
          // nobody waits for a feed that is not there
          if (this.#problem instanceof FeedNotAdvertisedError) this.#wake(false);
          this.#options.report(this.#problem);
        }
      } finally {
        clearTimeout(watchdog);
        this.#connected = false;
        this.#closed.signal.removeEventListener('abort', abort);
        connection.abort();
      }
    }
    // wake anyone still waiting for `ready`; they see an unready feed
    this.#wake(false);
  }

  #wake(ready: boolean): void {
    for (const wake of this.#readyWaiters.splice(0)) wake(ready);
  }

  #onEvent(event: ServerSentEvent): void {
    if (event.id !== undefined) this.#lastEventId = event.id;
    if (event.event === 'revocation') {
      let parsed: RevocationEvent | undefined;
      try {
        const result = RevocationEventSchema.safeParse(JSON.parse(event.data));
        if (result.success) parsed = result.data;
      } catch {
        // not JSON
      }
      if (parsed) {
        const { hash, ...rest } = parsed;
        this.revoked.add({ ...rest, key: hash });
      } else this.#options.report(new Error('revocation feed sent an event it could not read'));
    } else if (event.event === 'reconnect') {
      this.#reconnectAsked = true;
    } else if (event.event === 'ready' && !this.#ready) {
      this.#ready = true;
      this.#wake(true);
    }
    this.#problem = undefined;
    // every event, heartbeats included, proves the feed alive
    this.#lastEventAt = Date.now();
    const now = nowSeconds();
    if (now - this.#lastPrune >= PRUNE_EVERY_S) {
      this.#lastPrune = now;
      this.revoked.prune(now);
    }
  }
}
