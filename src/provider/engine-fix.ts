/**
 * One fix to oidc-provider, applied as its module loads (a Node.js module hook, registered by
 * `mcp-authz serve` before it loads the engine: src/provider/engine-fix-hook.ts): `ctx.oidc` is
 * defined with one getter shared by every request instead of a new closure per request.
 *
 * Why: the engine's `ensureOIDC` gives every request's koa context an accessor whose getter is a
 * function made for that request. With it, each request's whole graph (context, request,
 * response, OIDCContext, headers) survives two scavenges, is promoted, and waits for a full
 * collection: ~9–12 KB a request, scavenges of 5–8 ms every ~125 requests, ~15 % of the server's
 * CPU on the token endpoint. As far as we can tell, V8's inline caches at the sites reading
 * `ctx.oidc` keep the context (the holder of an accessor seen once) from old space, which a
 * scavenge treats as live. With one shared getter nothing is promoted (docs/performance.md,
 * "Ninth round", bisected on a minimal Provider).
 *
 * The getter keeps the engine's behaviour: `ctx.oidc` is a non-configurable accessor, its
 * OIDCContext made on first read, once per context. The fix applies only to the exact code it
 * was written for (`ENSURE_OIDC`); any other version of the file loads as it is, and
 * test/provider/engine-fix.test.ts fails for the installed engine if the text no longer matches.
 */
import type { LoadHook } from 'node:module';

/** The engine's file holding `ensureOIDC`. */
export const ENGINE_FILE = '/oidc-provider/lib/helpers/initialize_app.js';

/** `ensureOIDC` as oidc-provider 9 writes it. */
export const ENSURE_OIDC = `  const ensureOIDC = async (ctx, next) => {
    let oidcCtx;
    Object.defineProperty(ctx, 'oidc', {
      get: () => {
        oidcCtx ||= new this.OIDCContext(ctx);
        return oidcCtx;
      },
    });`;

/** The same, with one getter for every context (the OIDCContext kept in a symbol-keyed slot of the context). */
const SHARED_GETTER = `  const provider = this;
  const oidcSlot = Symbol('oidc');
  function oidcGetter() {
    return (this[oidcSlot] ||= new provider.OIDCContext(this));
  }
  const ensureOIDC = async (ctx, next) => {
    Object.defineProperty(ctx, 'oidc', { get: oidcGetter });`;

/** The engine file's source with the fix, or undefined when it is not the code the fix was written for. */
export function fixEngineSource(source: string): string | undefined {
  const at = source.indexOf(ENSURE_OIDC);
  if (at < 0 || source.indexOf(ENSURE_OIDC, at + 1) >= 0) return undefined;
  return source.slice(0, at) + SHARED_GETTER + source.slice(at + ENSURE_OIDC.length);
}

/** The module hook: the engine's file with the fix; every other module as it is. */
export const load: LoadHook = async (url, context, nextLoad) => {
  const loaded = await nextLoad(url, context);
  if (!url.endsWith(ENGINE_FILE) || loaded.source === undefined || loaded.source === null) return loaded;
  const fixed = fixEngineSource(typeof loaded.source === 'string' ? loaded.source : Buffer.from(loaded.source as Uint8Array).toString('utf8'));
  return fixed === undefined ? loaded : { ...loaded, source: fixed };
};
