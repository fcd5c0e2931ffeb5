/**
 * The admin listener: a port of its own, never behind the public Service or Ingress, for the
 * platform around the server —
 *   GET /healthz   200 while the process runs and its event loop answers (liveness)
 *   GET /readyz    200 when it should get traffic, else 503 with what failed (readiness)
 *   GET /metrics   Prometheus text (src/observability/metrics.ts)
 * Plain node:http: nothing here needs sessions, cookies or the engine, and it keeps answering
 * while the public listener drains.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import type { Readiness } from './readiness.js';

export interface AdminListenerOptions {
  port: number;
  host: string;
  readiness: Readiness;
  metrics: ServerMetrics;
  log: Logger;
}

export interface AdminListener {
  /** `http://host:port` as bound (port 0 picks a free one) */
  readonly url: string;
  close(): Promise<void>;
}

export async function startAdminListener(options: AdminListenerOptions): Promise<AdminListener> {
  const { readiness, metrics, log } = options;
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      log.error({ event: 'admin.error', path: pathOf(req), err: { message: err.message } }, 'admin listener request failed');
      if (!res.headersSent) send(res, 500, 'application/json', '{"status":"error"}');
      else res.destroy();
    });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'application/json', '{"status":"method not allowed"}');
      return;
    }
    switch (path) {
      case '/healthz':
        send(res, 200, 'application/json', '{"status":"ok"}');
        return;
      case '/readyz': {
        const report = await readiness.check();
        send(res, report.ready ? 200 : 503, 'application/json', JSON.stringify({ status: report.ready ? 'ready' : 'not ready', ...report.checks }));
        return;
      }
      case '/metrics': {
        const { contentType, body } = await metrics.expose();
        send(res, 200, contentType, body);
        return;
      }
      default:
        send(res, 404, 'application/json', '{"status":"not found","paths":["/healthz","/readyz","/metrics"]}');
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `the admin listener cannot use ${options.host}:${options.port}: the port is in use (set ADMIN_PORT or admin.port, or admin.enabled: false)`
            : `the admin listener cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`,
        ),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
