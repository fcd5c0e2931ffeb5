/**
 * The `fetch` oidc-provider uses for everything it fetches on a client's behalf (client ID
 * metadata documents, a client's `jwks_uri`), hardened against SSRF:
 * - `https` only (plain `http` only to loopback, and only when private networks are allowed);
 * - every address a name resolves to is checked (see special-addresses.ts), and the socket
 *   connects to exactly the addresses that were checked, so DNS cannot answer differently
 *   between the check and the connection (rebinding);
 * - no redirects, a size cap while reading, one deadline for connection and body.
 * A refusal is a {@link FetchRefused} whose message is the reason, for the log.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { isLoopbackHost } from '../config/uri.js';
import { specialAddressKind } from './special-addresses.js';

export class FetchRefused extends Error {
  override readonly name = 'FetchRefused';
}

export interface GuardedFetchOptions {
  /** loopback and private addresses (and `http` to loopback) are allowed: tests and local development only */
  allowPrivateNetwork: boolean;
  timeoutMs: number;
  /** hard cap on any response body (callers may apply a smaller one) */
  maxBytes: number;
  /** told about every refusal, with the URL and the reason */
  onRefused?: (url: URL, reason: string) => void;
}

interface FetchInit {
  method?: string;
  headers?: ConstructorParameters<typeof Headers>[0];
  signal?: AbortSignal | null;
}

export type GuardedFetch = (input: string | URL, init?: FetchInit) => Promise<Response>;

export function guardedFetch(options: GuardedFetchOptions): GuardedFetch {
  return async (input, init = {}) => {
    const url = new URL(String(input));
    try {
      return await fetchOnce(url, init, options);
    } catch (err) {
      const reason = err instanceof FetchRefused ? err.message : `fetch failed (${(err as Error).name})`;
      options.onRefused?.(url, reason);
      throw err instanceof FetchRefused ? err : new FetchRefused(reason);
    }
  };
}

function fetchOnce(url: URL, init: FetchInit, options: GuardedFetchOptions): Promise<Response> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && options.allowPrivateNetwork && isLoopbackHost(url.hostname))) {
    throw new FetchRefused(`${url.protocol.replace(/:$/, '')} is not allowed, only https`);
  }
  if (url.username || url.password) throw new FetchRefused('URLs with credentials are not fetched');
  const literalKind = isIP(host) ? refusedKind(host, options) : undefined;
  if (literalKind) throw new FetchRefused(`the address ${host} is ${literalKind}, not a public address`);

  return new Promise<Response>((resolve, reject) => {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, {
      method: init.method ?? 'GET',
      headers: Object.fromEntries(new Headers(init.headers ?? {})),
      agent: false,
      lookup: checkedLookup(options),
    });
    const fail = (err: Error) => {
      clearTimeout(timer);
      init.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new FetchRefused(`no complete answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    const onAbort = () => fail(new FetchRefused('aborted by the caller (deadline)'));
    if (init.signal?.aborted) return onAbort();
    init.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => fail(err instanceof FetchRefused ? err : new FetchRefused(`connection failed (${(err as NodeJS.ErrnoException).code ?? err.name})`)));
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) return fail(new FetchRefused(`answered a redirect (HTTP ${status}); redirects are not followed`));
      if (status !== 200) return fail(new FetchRefused(`answered HTTP ${status}, not 200`));
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > options.maxBytes) return fail(new FetchRefused(`larger than ${options.maxBytes} bytes`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) return fail(new FetchRefused(`larger than ${options.maxBytes} bytes`));
        chunks.push(chunk);
      });
      res.on('error', (err) => fail(new FetchRefused(`reading the answer failed (${err.name})`)));
      res.on('end', () => {
        if (size > options.maxBytes) return;
        clearTimeout(timer);
        init.signal?.removeEventListener('abort', onAbort);
        const headers = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        // the body is whole: say its size, so the caller's own size limit applies before reading it
        headers.set('content-length', String(size));
        headers.delete('transfer-encoding');
        resolve(new Response(Buffer.concat(chunks), { status, headers }));
      });
    });
    req.end();
  });
}

/** Why an address may not be reached, or undefined when it may. */
function refusedKind(address: string, options: GuardedFetchOptions): string | undefined {
  return options.allowPrivateNetwork ? undefined : specialAddressKind(address);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for the socket: resolves every address of the name, refuses the lot when any
 * of them is special-use, and hands the socket exactly the addresses it checked.
 */
function checkedLookup(options: GuardedFetchOptions) {
  return (hostname: string, lookupOptions: { family?: number | string; all?: boolean }, callback: LookupCallback) => {
    const family = lookupOptions.family === 'IPv6' ? 6 : lookupOptions.family === 'IPv4' ? 4 : Number(lookupOptions.family ?? 0);
    dnsLookup(hostname, { all: true, family: family === 4 || family === 6 ? family : 0 }, (err, addresses) => {
      if (err) return callback(err, []);
      if (addresses.length === 0) return callback(new FetchRefused(`${hostname} has no address`), []);
      for (const { address } of addresses) {
        const kind = refusedKind(address, options);
        if (kind) return callback(new FetchRefused(`${hostname} resolves to ${address}, which is ${kind}, not a public address`), []);
      }
      if (lookupOptions.all) return callback(null, addresses);
      const [first] = addresses as [LookupAddress];
      callback(null, first.address, first.family);
    });
  };
}
