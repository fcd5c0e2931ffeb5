/**
 * GET /revocations: the revocation feed verifiers follow, as Server-Sent Events.
 *   event: revocation   id: <log id>   data: {"type":"token"|"grant"|"subject", …}
 *   event: ready        once the retained backlog (after Last-Event-ID, if given) is sent
 *   event: heartbeat    data: {"time": <epoch ms>} every few seconds, so a verifier can tell
 *                       a quiet feed from a dead one
 *   event: reconnect    this process is shutting down: reconnect now (the stream ends next)
 * Resume: a reconnecting verifier sends `Last-Event-ID` (or `?after=`) and gets what it missed.
 * Each source address may hold `maxConnectionsPerSource` connections at once; more get `429`.
 * The feed is public and names nothing: each jti, grant id or subject is sent as its hash
 * (src/revocation/feed-events.ts), which only a holder of a matching token can match.
 */
import { PassThrough } from 'node:stream';
import type { Middleware } from 'koa';
import type { RevocationEntry, RevocationLog } from '../../adapters/contract.js';
import type { RevocationHub } from './hub.js';
import { feedEvent } from './feed-events.js';

export const FEED_PATH = '/revocations';
const BACKLOG_BATCH = 500;

export interface FeedOptions {
  log: RevocationLog;
  hub: RevocationHub;
  path: string;
  heartbeatMs: number;
  /** open connections one source address may hold at once (`revocationFeed.maxConnectionsPerSource`) */
  maxConnectionsPerSource: number;
}

/** How long a source over its connection cap is asked to wait. */
const CAPPED_RETRY_SECONDS = 5;

const format = (entry: RevocationEntry) => `id: ${entry.id}\nevent: revocation\ndata: ${JSON.stringify(feedEvent(entry.event))}\n\n`;

export function revocationFeed({ log, hub, path, heartbeatMs, maxConnectionsPerSource }: FeedOptions): Middleware {
  /** open connections per source address, in this process */
  const open = new Map<string, number>();
  return async (ctx, next) => {
    if (ctx.path !== path) return next();
    if (ctx.method === 'OPTIONS') {
      ctx.set('Access-Control-Allow-Origin', '*');
      ctx.set('Access-Control-Allow-Headers', 'Last-Event-ID, Cache-Control');
      ctx.status = 204;
      return undefined;
    }
    if (ctx.method !== 'GET') {
      ctx.set('Allow', 'GET, OPTIONS');
      ctx.status = 405;
      ctx.body = { error: 'invalid_request', error_description: 'use GET' };
      return undefined;
    }
    const source = ctx.ip;
    const held = open.get(source) ?? 0;
    if (held >= maxConnectionsPerSource) {
      ctx.status = 429;
      ctx.set('Retry-After', String(CAPPED_RETRY_SECONDS));
      ctx.set('Cache-Control', 'no-store');
      ctx.set('Access-Control-Allow-Origin', '*');
      ctx.body = { error: 'temporarily_unavailable', error_description: 'too many open revocation feed connections from this address' };
      return undefined;
    }
    open.set(source, held + 1);
    const header = ctx.get('last-event-id') || (typeof ctx.query.after === 'string' ? ctx.query.after : '');
    let lastId = header && header.length <= 64 ? header : undefined;

    const stream = new PassThrough();
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.status = 200;
    ctx.set('Content-Type', 'text/event-stream; charset=utf-8');
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Connection', 'keep-alive');
    ctx.set('X-Accel-Buffering', 'no');
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.body = stream;

    // Subscribe before reading the backlog so nothing appended meanwhile is missed; an entry
    // that arrives both ways is sent twice, which verifiers treat as the no-op it is.
    const pending: RevocationEntry[] = [];
    let live = false;
    const unsubscribe = hub.subscribe((entry) => {
      if (live) stream.write(format(entry));
      else pending.push(entry);
    });
    const heartbeat = setInterval(() => stream.write(`event: heartbeat\ndata: {"time":${Date.now()}}\n\n`), heartbeatMs);
    heartbeat.unref();
    let closed = false;
    const close = (reconnect = false) => {
      if (closed) return;
      closed = true;
      const left = (open.get(source) ?? 1) - 1;
      if (left > 0) open.set(source, left);
      else open.delete(source);
      clearInterval(heartbeat);
      unsubscribe();
      offStop();
      // this process is going away, the feed is not: the follower reconnects at once (to another replica)
      if (reconnect) stream.write(`event: reconnect\ndata: {"reason":"shutting down"}\n\n`);
      stream.end();
    };
    const offStop = hub.onStop(() => close(true));
    ctx.req.on('close', () => close());

    stream.write(`retry: 1000\n\n`);
    void (async () => {
      try {
        for (;;) {
          const batch = await log.readAfter(lastId, BACKLOG_BATCH);
          for (const entry of batch) stream.write(format(entry));
          if (batch.length) lastId = batch[batch.length - 1]!.id;
          if (batch.length < BACKLOG_BATCH) break;
        }
        for (const entry of pending.splice(0)) stream.write(format(entry));
        live = true;
        stream.write(`event: ready\ndata: {"time":${Date.now()}}\n\n`);
      } catch {
        close();
      }
    })();
    return undefined;
  };
}
