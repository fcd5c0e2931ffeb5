/**
 * Small runtime-neutral helpers.
 */

/** Lets a timer not keep a Node.js process alive (no-op where timers are plain numbers). */
export function unrefTimer(timer: unknown): void {
  if (typeof timer === 'object' && timer !== null && 'unref' in timer && typeof timer.unref === 'function') timer.unref();
}

/** How often the same problem is written to the console at most. */
const REPEAT_AFTER_MS = 60_000;

/**
 * Where the verifier's problems go when no `onError` is given: the console, each distinct
 * message at most once a minute (a feed that cannot connect retries every few seconds).
 */
export function consoleReporter(): (error: Error) => void {
  const said = new Map<string, number>();
  return (error) => {
    const now = Date.now();
    if (now - (said.get(error.message) ?? -Infinity) < REPEAT_AFTER_MS) return;
    if (said.size > 100) said.clear();
    said.set(error.message, now);
    globalThis.console?.warn(`mcp-authz/verifier: ${error.message}`);
  };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

interface NodeHash {
  createHash(algorithm: 'sha256'): { update(data: string, encoding: 'utf8'): { digest(encoding: 'base64url'): string } };
}

/**
 * node:crypto where the runtime has it (Node >= 20.16, Bun, Deno: `process.getBuiltinModule`),
 * without importing it, so the verifier stays free of runtime-specific imports. On Node, Web
 * Crypto's digest goes through the thread pool and costs tens of microseconds a call; the
 * synchronous hash, about one.
 */
const nodeHash = (() => {
  try {
    const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
    const module = typeof get === 'function' ? (get('node:crypto') as Partial<NodeHash> | undefined) : undefined;
    return typeof module?.createHash === 'function' ? (module as NodeHash) : undefined;
  } catch {
    return undefined;
  }
})();

/** base64url SHA-256 of a string's UTF-8 bytes, at once where the runtime hashes synchronously; undefined elsewhere. */
export function sha256Base64urlNow(value: string): string | undefined {
  return nodeHash?.createHash('sha256').update(value, 'utf8').digest('base64url');
}

/** base64url SHA-256 of a string's UTF-8 bytes. */
export async function sha256Base64url(value: string): Promise<string> {
  return sha256Base64urlNow(value) ?? webCryptoSha256Base64url(value);
}

/** The same with Web Crypto only: what runtimes without node:crypto use. */
export async function webCryptoSha256Base64url(value: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(value)));
  let binary = '';
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Hex SHA-256 of a string (cache keys derived from tokens, so tokens are never kept). */
export async function sha256Hex(value: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(value)));
  let out = '';
  for (const byte of digest) out += byte.toString(16).padStart(2, '0');
  return out;
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Space-separated scope string → array (empty entries dropped). */
export function splitScope(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (Array.isArray(value)) return value.filter((entry): entry is string => typeof entry === 'string' && entry.length > 0);
  return [];
}
