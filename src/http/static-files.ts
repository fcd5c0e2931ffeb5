/**
 * Serves the handful of static assets (CSS, JS, icons) used by the rendered pages.
 *
 * Everything is read into memory once at startup and looked up by exact file name, so
 * no request path ever reaches the file system: path traversal is impossible by
 * construction, and unknown names under the prefix are a plain 404.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type Koa from 'koa';

export interface StaticFilesOptions {
  /** Directory holding the assets (flat; subdirectories are ignored). */
  dir: string;
  /** URL prefix the assets are served under. */
  prefix: '/static';
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Loads every servable file of `dir` (by extension) into a name → asset map. */
export function loadAssets(dir: string): ReadonlyMap<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name).toLowerCase()];
    if (type === undefined || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const body = readFileSync(path);
    const etag = `"${createHash('sha256').update(body).digest('base64url')}"`;
    assets.set(name, { body, type, etag });
  }
  return assets;
}

export function staticFiles(options: StaticFilesOptions): Koa.Middleware {
  const assets = loadAssets(options.dir);
  const prefix = `${options.prefix}/`;

  return async function staticFilesMiddleware(ctx, next) {
    if (ctx.path !== options.prefix && !ctx.path.startsWith(prefix)) return next();
    const asset = assets.get(ctx.path.slice(prefix.length));
    if (asset === undefined) {
      ctx.status = 404;
      ctx.type = 'text/plain';
      ctx.body = 'Not Found';
      return undefined;
    }
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      ctx.body = 'Method Not Allowed';
      return undefined;
    }
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('ETag', asset.etag);
    ctx.type = asset.type;
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return undefined;
    }
    ctx.body = asset.body;
    return undefined;
  };
}
