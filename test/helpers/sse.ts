/**
 * A minimal Server-Sent Events reader for tests: connects with fetch, parses events and
 * lets a test wait for the next event matching a predicate.
 */
import { feedHash } from '../../src/revocation/feed-events.js';
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  readonly #controller = new AbortController();
  #waiters: { match: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }[] = [];
  #done: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.#done = this.#run(url, headers).catch(() => {});
  }

  async #run(url: string, headers: Record<string, string>) {
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: this.#controller.signal });
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let sep: number;
      while ((sep = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, sep);
        buffer = buffer.slice(sep + 2);
        const event: SseEvent = { event: 'message', data: '' };
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'id') event.id = value;
          else if (field === 'event') event.event = value;
          else if (field === 'data') data.push(value);
        }
        if (!data.length && event.id === undefined) continue;
        event.data = data.join('\n');
        this.events.push(event);
        this.#waiters = this.#waiters.filter((w) => (w.match(event) ? (w.resolve(event), false) : true));
      }
    }
  }

  /** Resolves with the first event (already received or future) matching `match`. */
  next(match: (e: SseEvent) => boolean, timeoutMs = 5000): Promise<SseEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no matching event in time')), timeoutMs);
      this.#waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }

  async close() {
    this.#controller.abort();
    await this.#done;
  }
}

export const revocationOf = (predicate: (data: Record<string, unknown>) => boolean) => (e: SseEvent) =>
  e.event === 'revocation' && predicate(JSON.parse(e.data) as Record<string, unknown>);

/** Matches the feed's revocation of a token (by jti), a grant (by id) or a subject's tokens (by sub): the feed names them by hash. */
export const revocationFor = (kind: 'token' | 'grant' | 'subject', identifier: unknown) => {
  const hash = feedHash(kind, String(identifier));
  return revocationOf((d) => d.type === kind && d.hash === hash);
};
