/**
 * Holds the running oidc-provider instance and swaps it when the effective signing keys
 * change (a rotation by `mcp-authz keys rotate` on any machine, a pending key becoming
 * active, a retired key leaving the JWKS, or an edited `keys.file`). State lives in the
 * store, so swapping an instance loses nothing; requests in flight finish on the instance
 * they started on.
 */
import type Provider from 'oidc-provider';
import type { Middleware } from 'koa';
import mount from 'koa-mount';
import { createLocalJWKSet, type JWK, type JWTVerifyGetKey } from 'jose';
import type { SettingsStore } from '../../adapters/contract.js';
import { jwksFingerprint, providerJwks, readKeySet, type KeyTiming } from '../keys/signing-keys.js';
import { readSigningKeysFile } from '../keys/secret-files.js';
import type { Logger } from '../observability/logger.js';

const NEVER_SAVED_SESSION = 'persist can only be called on previously persisted Sessions';

function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, key_ops: _ops, ...pub } = jwk;
  return pub;
}

/** What the provider should run with at `now`: private keys, verify-only ones marked `key_ops: ['verify']`. */
export type KeySource = (now: number) => Promise<{ keys: JWK[] }>;

/** Keys kept in the store, created and rotated by the server and `mcp-authz keys`. */
export function storedKeys(settings: SettingsStore, timing: KeyTiming): KeySource {
  return async (now) => providerJwks(await readKeySet(settings), now, timing);
}

/** Keys from `keys.file`, re-read on every reload so an updated Secret is picked up. */
export function fileKeys(path: string): KeySource {
  return async () => readSigningKeysFile(path);
}

export class ProviderHolder {
  #provider!: Provider;
  #mounted!: Middleware;
  #fingerprint = '';
  #verificationKeys!: JWTVerifyGetKey;
  #signingKeys: JWK[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly build: (jwks: { keys: JWK[] }) => Provider,
    private readonly keys: KeySource,
    private readonly basePath: string,
    private readonly log: Logger,
  ) {}

  get provider(): Provider {
    return this.#provider;
  }

  /** The public keys of the current key set, for checking our own tokens. */
  get verificationKeys(): JWTVerifyGetKey {
    return this.#verificationKeys;
  }

  /**
   * The private key the provider signs `alg` tokens with now: the first of that algorithm not
   * marked verify-only, as oidc-provider picks it (the key set lists the active keys first).
   * For tokens we sign ourselves (src/tool-approvals), so verifiers find them in the JWKS.
   */
  signingKey(alg: string): JWK | undefined {
    return this.#signingKeys.find((k) => k.alg === alg && k.d !== undefined && (k.key_ops === undefined || k.key_ops.includes('sign')));
  }

  /** koa middleware delegating to whichever instance is current */
  readonly middleware: Middleware = (ctx, next) => {
    let engine: Promise<unknown>;
    try {
      engine = Promise.resolve(this.#mounted(ctx, next));
    } catch (err) {
      engine = Promise.reject(err as Error);
    }
    // one promise a request, not an async frame around the engine
    return engine.then(undefined, (err: unknown) => {
      // oidc-provider 9 answers an error on a route that touched a brand-new browser session
      // (e.g. GET /device/<unknown uid> without cookies), then fails to persist that never-saved
      // session. Its answer is already in ctx: keep it rather than turn it into a 500.
      if (err instanceof TypeError && err.message === NEVER_SAVED_SESSION && ctx.status >= 400 && ctx.status < 500 && ctx.body) {
        this.log.debug({ requestId: ctx.state.requestId }, 'ignored session persist of a never-saved session');
        return;
      }
      throw err;
    });
  };

  /** Re-reads the keys; rebuilds the provider when what it should run with changed. */
  async refresh(now = Date.now()): Promise<boolean> {
    const jwks = await this.keys(now);
    const fingerprint = jwksFingerprint(jwks);
    if (fingerprint === this.#fingerprint) return false;
    const provider = this.build(jwks);
    this.#provider = provider;
    this.#verificationKeys = createLocalJWKSet({ keys: jwks.keys.map(publicPart) });
    this.#signingKeys = jwks.keys;
    this.#mounted = this.basePath ? mount(this.basePath, provider as never) : mount(provider as never);
    if (this.#fingerprint) this.log.info({ keys: fingerprint }, 'signing keys changed; provider reloaded');
    this.#fingerprint = fingerprint;
    return true;
  }

  /** Whether signing keys were loaded (the first `refresh()` succeeded). */
  get loaded(): boolean {
    return this.#fingerprint !== '';
  }

  start(intervalMs: number): void {
    this.stop();
    this.#timer = setInterval(() => {
      this.refresh().catch((err: Error) => this.log.error({ err: { message: err.message } }, 'could not reload signing keys; keeping the current ones'));
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
