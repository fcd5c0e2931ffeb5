/**
 * RFC 8628 polling rules oidc-provider leaves out:
 * - the device authorization response carries `interval` (§3.2);
 * - a device polling faster than its interval gets `slow_down`, and its interval grows by
 *   5 seconds for this and all later requests (§3.5).
 * Poll times live in the store (model "DevicePoll", keyed by the hashed device code) so the
 * rule holds across replicas.
 */
import type { Context, Middleware, Next } from 'koa';
import type { Store } from '../../adapters/contract.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

interface PollRecord {
  lastPolledAt: number;
  interval: number;
}

export function devicePolling(options: { store: Store; basePath: string; interval: number; deviceCodeTtl: number }): Middleware {
  const polls = options.store.model('DevicePoll');
  const tokenPath = `${options.basePath}/token`;
  const deviceAuthPath = `${options.basePath}/device/auth`;

  // only POST /token and /device/auth are looked at: any other request passes straight on
  return (ctx, next) => (ctx.method === 'POST' && (ctx.path === tokenPath || ctx.path === deviceAuthPath) ? afterEngine(ctx, next) : next());

  // one promise a request when there is nothing to do after the engine (every answer but a pending device poll)
  function afterEngine(ctx: Context, next: Next): Promise<void> {
    return next().then(() => answered(ctx));
  }

  function answered(ctx: Context): Promise<void> | undefined {
    if (ctx.path === deviceAuthPath && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      const body = ctx.body as Record<string, unknown>;
      body.interval ??= options.interval;
      return undefined;
    }

    if (ctx.path !== tokenPath || ctx.status !== 400) return undefined;
    const oidc = (ctx as unknown as { oidc?: { params?: Record<string, unknown> } }).oidc;
    const body = ctx.body as { error?: string } | undefined;
    const deviceCode = oidc?.params?.device_code;
    if (oidc?.params?.grant_type !== DEVICE_GRANT || body?.error !== 'authorization_pending' || typeof deviceCode !== 'string') return undefined;
    return pending(ctx, deviceCode);
  }

  /** A device polling while its code is not approved yet: slow it down when it polls faster than its interval. */
  async function pending(ctx: Context, deviceCode: string): Promise<void> {
    const now = Date.now();
    const previous = (await polls.find(deviceCode)) as PollRecord | undefined;
    let interval = previous?.interval ?? options.interval;
    if (previous && now - previous.lastPolledAt < interval * 1000) {
      interval += 5;
      ctx.body = { error: 'slow_down', error_description: `polling too fast: wait at least ${interval} seconds between requests` };
    }
    const record: PollRecord = { lastPolledAt: now, interval };
    await polls.upsert(deviceCode, record as unknown as Record<string, unknown>, options.deviceCodeTtl);
  }
}
