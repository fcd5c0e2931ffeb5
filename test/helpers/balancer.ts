/**
 * A small, real HTTP reverse proxy (node:http) in front of several replicas, standing in for
 * the load balancer or ingress of a deployment: its URL is the replicas' shared issuer.
 *
 *   const lb = await startBalancer({ backends: [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`] });
 *   lb.url                      // http://127.0.0.1:<port>, the ISSUER of every replica
 *   lb.pin(0)                   // every request to backend 0 …
 *   lb.pin(undefined)           // … or round robin again (the default)
 *   lb.route((req) => (req.url?.startsWith('/revocations') ? 1 : undefined))
 *                               // per request: an index, or undefined to fall back to pin / round robin
 *   lb.route(undefined)         // no routing function
 *   lb.served                   // what went where: { method, path, backend, status? } in arrival order
 *   await lb.close()
 *
 * Choosing a backend: the routing function if it names one, else the pinned backend, else the
 * next one round robin. Like a Kubernetes Service, backends whose `ready` URL (an admin
 * listener's /readyz) does not answer 2xx are left out while another is ready (polled every
 * `readyIntervalMs`); like an ingress controller, with `retry` a request whose connection was
 * refused before a byte was sent goes to the next candidate instead of failing (`served` says
 * which backends were `tried`). `candidates(req)` returns that choice first and the other backends after
 * it (in order), so that skipping backends whose `ready` URL fails, and retrying on the next
 * candidate, fit in `#dispatch` without changing the API: {@link forward} settles with
 * `{ sent: false }` when the connection failed before a byte of the request was written (the
 * request body is piped only once the connection is up), which is when a retry is safe.
 *
 * Passes everything through unchanged: method, path and query, the Host header (so a replica
 * sees the issuer's host), every request and response header but the hop-by-hop ones (several
 * Set-Cookie headers included, raw), status and Location, and bodies as streams both ways (a
 * Server-Sent Events response reaches the client event by event; when the client goes away
 * the backend's response is dropped too). Like a real proxy it appends the client's address to
 * `X-Forwarded-For` and sets `X-Forwarded-Proto` (`forwarded: false` turns both off): replicas
 * configured with `trustProxy` read them. A backend that cannot be reached answers `502`.
 */
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Backend {
  /** origin of the replica, e.g. http://127.0.0.1:4001 */
  url: string;
  /** a readiness URL (such as the admin listener's /readyz), for skipping replicas that are not ready */
  ready?: string;
}

export type RouteFn = (req: IncomingMessage) => number | undefined;

export interface Served {
  method: string;
  /** path and query as the client sent them */
  path: string;
  backend: number;
  /** the backend's status, once its answer started */
  status?: number;
  /** with `retry`: the backends that could not be reached before this one */
  tried?: number[];
}

export interface BalancerOptions {
  backends: (string | Backend)[];
  /** append X-Forwarded-For and set X-Forwarded-Proto (default true) */
  forwarded?: boolean;
  /** try the next candidate when a backend could not be reached before anything was sent (default false: 502) */
  retry?: boolean;
  /** how often the backends' `ready` URLs are asked (default 100 ms) */
  readyIntervalMs?: number;
}

export interface Balancer {
  url: string;
  readonly backends: readonly Backend[];
  readonly served: Served[];
  /** every request to backend `index`; undefined for round robin */
  pin(index: number | undefined): void;
  /** a per-request choice that wins over `pin` when it returns an index */
  route(choose: RouteFn | undefined): void;
  /** the backends in the order a request would try them (without a route or pin, this takes a round-robin turn) */
  candidates(req: IncomingMessage): number[];
  close(): Promise<void>;
}

/** RFC 9110 §7.6.1 hop-by-hop headers, plus the pre-standard ones proxies drop too. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export type ForwardResult = { sent: true } | { sent: false; error: Error };

/** Headers for the next hop: raw pairs minus hop-by-hop ones (and any the Connection header names). */
function endToEnd(raw: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  const named = new Set(
    pairs
      .filter(([name]) => name.toLowerCase() === 'connection')
      .flatMap(([, value]) => value.split(','))
      .map((token) => token.trim().toLowerCase()),
  );
  return pairs.filter(([name]) => !HOP_BY_HOP.has(name.toLowerCase()) && !named.has(name.toLowerCase()));
}

/**
 * Sends `req` to `backend` and streams the answer into `res`. Settles `{ sent: false }` when no
 * byte of the request reached the backend (connection refused or reset before it was up), so the
 * caller may try another backend; `{ sent: true }` once the exchange is over, however it ended.
 */
export function forward(req: IncomingMessage, res: ServerResponse, backend: Backend, agent: Agent, forwarded: boolean, onStatus: (status: number) => void): Promise<ForwardResult> {
  const target = new URL(backend.url);
  const headers = endToEnd(req.rawHeaders).filter(([name]) => !(forwarded && name.toLowerCase() === 'x-forwarded-proto'));
  if (forwarded) {
    const client = req.socket.remoteAddress ?? '';
    const index = headers.findIndex(([name]) => name.toLowerCase() === 'x-forwarded-for');
    if (index === -1) headers.push(['X-Forwarded-For', client]);
    else headers[index] = [headers[index]![0], `${headers[index]![1]}, ${client}`];
    headers.push(['X-Forwarded-Proto', 'http']);
  }
  return new Promise((resolve) => {
    let connected = false;
    const upstream = request({
      agent,
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: headers.flat(),
      setHost: false,
    });
    const sendBody = () => {
      connected = true;
      req.pipe(upstream);
    };
    upstream.once('socket', (socket) => (socket.connecting ? socket.once('connect', sendBody) : sendBody()));
    upstream.once('response', (answer) => {
      onStatus(answer.statusCode ?? 502);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.rawHeaders).flat());
      // a server-sent event must not wait in a buffer
      res.flushHeaders();
      answer.pipe(res);
      answer.on('error', () => res.destroy());
      answer.once('close', () => resolve({ sent: true }));
    });
    // `on`, not `once`: destroying a request can make it emit a second error
    upstream.on('error', (error) => {
      if (!connected) return resolve({ sent: false, error });
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`bad gateway: ${error.message}\n`);
      } else res.destroy();
      resolve({ sent: true });
    });
    // the client went away (e.g. a feed subscriber closed): drop the backend's side too
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
  });
}

export async function startBalancer(options: BalancerOptions): Promise<Balancer> {
  const backends: Backend[] = options.backends.map((b) => (typeof b === 'string' ? { url: b } : b));
  if (backends.length === 0) throw new Error('a balancer needs at least one backend');
  const forwarded = options.forwarded ?? true;
  // a connection per request: a kept-alive socket the backend is closing just then would fail a
  // request that was already sent, which a test must never see
  const agent = new Agent({ keepAlive: false });
  const served: Served[] = [];
  let pinned: number | undefined;
  let choose: RouteFn | undefined;
  let next = 0;

  const check = (index: number | undefined, what: string) => {
    if (index !== undefined && (!Number.isInteger(index) || index < 0 || index >= backends.length)) {
      throw new Error(`${what}: no backend ${index} (there are ${backends.length})`);
    }
    return index;
  };

  function candidates(req: IncomingMessage): number[] {
    let first = check(choose?.(req), 'route');
    first ??= pinned;
    if (first === undefined) {
      first = next;
      next = (next + 1) % backends.length;
    }
    return [first, ...backends.keys()].filter((index, i, all) => all.indexOf(index) === i);
  }

  // readiness: a backend with a `ready` URL is ready while it answers 2xx
  const ready = backends.map(() => true);
  let probing: NodeJS.Timeout | undefined;
  if (backends.some((b) => b.ready)) {
    const probe = () =>
      backends.forEach((b, i) => {
        if (!b.ready) return;
        fetch(b.ready, { signal: AbortSignal.timeout(1000) }).then(
          (r) => (ready[i] = r.ok),
          () => (ready[i] = false),
        );
      });
    probe();
    probing = setInterval(probe, options.readyIntervalMs ?? 100);
    probing.unref();
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const all = candidates(req);
    const order = all.some((i) => ready[i]) ? all.filter((i) => ready[i]) : all;
    const entry: Served = { method: req.method ?? 'GET', path: req.url ?? '/', backend: order[0]! };
    served.push(entry);
    for (const [attempt, index] of order.entries()) {
      entry.backend = index;
      const result = await forward(req, res, backends[index]!, agent, forwarded, (status) => (entry.status = status));
      if (result.sent) return;
      if (options.retry && attempt < order.length - 1) {
        (entry.tried ??= []).push(index);
        continue;
      }
      entry.status = 502;
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`bad gateway: ${result.error.message}\n`);
      return;
    }
  }

  const server: Server = createServer((req, res) => {
    dispatch(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(`balancer error: ${err.message}\n`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    backends,
    served,
    pin(index) {
      pinned = check(index, 'pin');
    },
    route(fn) {
      choose = fn;
    },
    candidates,
    async close() {
      clearInterval(probing);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
