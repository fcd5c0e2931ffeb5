/**
 * The refresh token reuse grace window. Public clients' refresh tokens rotate: oidc-provider
 * consumes the presented token and issues a successor, and a consumed token presented again
 * makes it revoke the whole grant (theft detection). Real clients retry a refresh whose
 * answer they lost, or send two at once; within `graceSeconds` of the first answer such a
 * retry gets that same answer (the same successor) instead of killing the grant.
 *
 * Per token (keyed by a domain-separated SHA-256 of it, never the token), across every
 * replica sharing the store: the first request claims the rotation (`store.rotations`,
 * atomic), runs the engine, and settles a successful answer sealed with AES-256-GCM under a
 * key derived from the token itself, so the store alone cannot read the successor.
 * Concurrent requests wait for that answer. An error answer is never replayed: the claim is
 * released and a retry reaches the engine (which refuses what it must before consuming the
 * token: src/provider/refresh-target.ts). After the window the record is gone, the engine
 * sees a consumed token and revokes the grant (logged and audited in src/provider/audit-events.ts).
 *
 * Only public clients (a `client_id` and no client authentication) are served replays:
 * a confidential client authenticates and is never answered without the engine.
 *
 * The presented token is spent only once the answer is settled: the engine's `consume` during a
 * claimed rotation is held back (src/provider/adapter.ts, {@link heldConsumes}) and done after
 * the settle. So a server killed in the middle of a rotation leaves the token unspent (and at
 * worst an orphaned successor nobody holds): the client's retry rotates it again, and no client
 * loses its grant to a crash. An error answer spends nothing.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context, Middleware, Next } from 'koa';
import { AlreadyConsumedError, type Store } from '../../adapters/contract.js';
import { adjustFormParams } from '../http/form-params.js';
import type { Logger } from '../observability/logger.js';

/**
 * How long a rotation stays claimed should its process die before settling it: a rotation takes
 * milliseconds, and the token it was spending is still unspent (below), so a retry after this
 * simply rotates it.
 */
const CLAIM_SECONDS = 3;
/** how often a request waiting for another one's answer looks for it */
const POLL_MS = 50;
/** how long a request waits for another one's answer before giving up */
const WAIT_MS = 5000;

const KEY_DOMAIN = 'mcp-authz/refresh-reuse\0';
const HKDF_SALT = 'mcp-authz/refresh-reuse/seal-salt';
const HKDF_INFO = 'mcp-authz/refresh-reuse/seal-key/aes-256-gcm';
const AAD = Buffer.from('mcp-authz/refresh-reuse/answer', 'utf8');
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The token endpoint's answer to one refresh, as replayed to a retry. */
export interface SealedAnswer {
  /** the client that asked; a retry from another client is not answered from it */
  clientId: string;
  status: number;
  body: Record<string, unknown>;
}

/**
 * The refresh tokens the engine spent during the current claimed rotation: the adapter holds
 * their `consume` back here, and the rotation spends them once its answer is settled.
 */
export const heldConsumes = new AsyncLocalStorage<string[]>();

export interface RefreshReuseOptions {
  store: Store;
  basePath: string;
  /** `config.refreshTokens.reuseGraceWindow`; 0 turns the window off */
  graceSeconds: number;
  log: Logger;
  /** called when a rotated token presented again within the window gets the same answer (metrics) */
  onReplay?: () => void;
}

/** The store key of a refresh token's rotation: hex SHA-256 of the token, domain-separated. */
export function rotationKey(refreshToken: string): string {
  return createHash('sha256').update(KEY_DOMAIN + refreshToken, 'utf8').digest('hex');
}

function sealingKey(refreshToken: string): Buffer {
  return Buffer.from(hkdfSync('sha256', refreshToken, HKDF_SALT, HKDF_INFO, 32));
}

/** base64url(iv | tag | AES-256-GCM ciphertext of the answer JSON), keyed by the refresh token. */
export function sealAnswer(refreshToken: string, answer: SealedAnswer): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(refreshToken), iv);
  cipher.setAAD(AAD);
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(answer), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64url');
}

/** The answer sealed under this refresh token; undefined when it was sealed under another or is damaged. */
export function unsealAnswer(refreshToken: string, sealed: string): SealedAnswer | undefined {
  try {
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(refreshToken), raw.subarray(0, IV_BYTES));
    decipher.setAAD(AAD);
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    const json = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    const answer = JSON.parse(json) as Partial<SealedAnswer>;
    if (typeof answer.clientId !== 'string' || typeof answer.status !== 'number' || !isObject(answer.body)) return undefined;
    return { clientId: answer.clientId, status: answer.status, body: answer.body };
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The refresh token and client id of a public client's refresh request; undefined for anything else. */
function publicRefresh(params: URLSearchParams): { token: string; clientId: string } | undefined {
  const single = (name: string) => {
    const values = params.getAll(name);
    return values.length === 1 && values[0] !== '' ? values[0] : undefined;
  };
  if (single('grant_type') !== 'refresh_token') return undefined;
  if (params.has('client_secret') || params.has('client_assertion') || params.has('client_assertion_type')) return undefined;
  const token = single('refresh_token');
  const clientId = single('client_id');
  return token !== undefined && clientId !== undefined ? { token, clientId } : undefined;
}

function respond(ctx: Context, status: number, body: Record<string, unknown>): void {
  ctx.status = status;
  ctx.body = body;
  ctx.type = 'application/json';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
}

export function refreshReuseGrace(options: RefreshReuseOptions): Middleware {
  const { store, graceSeconds, log } = options;
  const rotations = store.rotations;
  const tokenPath = `${options.basePath}/token`;

  /** Runs the engine as the claimant, then settles its OAuth answer and spends the token (or releases the claim). */
  async function rotate(ctx: Context, next: Next, key: string, token: string, clientId: string): Promise<void> {
    const held: string[] = [];
    try {
      await heldConsumes.run(held, next);
    } catch (err) {
      await rotations.release(key).catch(() => {});
      throw err;
    }
    const body: unknown = ctx.body;
    // only a rotation that happened is replayed; after an error nothing was handed out, nothing is spent
    if (ctx.status === 200 && isObject(body)) {
      try {
        await rotations.settle(key, sealAnswer(token, { clientId, status: ctx.status, body }), graceSeconds);
      } catch (err) {
        // the answer stands; retries wait for the claim to lapse
        log.warn({ event: 'refresh_token.settle_failed', requestId: ctx.state.requestId, err: { message: (err as Error).message } }, 'could not record a refresh answer for retries');
      }
      // the answer is recorded: now the presented token is spent
      const model = store.model('RefreshToken');
      await Promise.all(
        held.map((id) =>
          model.consume(id).catch((err: Error) => {
            if (!(err instanceof AlreadyConsumedError)) log.warn({ event: 'refresh_token.consume_failed', requestId: ctx.state.requestId, err: { message: err.message } }, 'a rotated refresh token could not be marked spent');
          }),
        ),
      );
    } else {
      await rotations.release(key).catch(() => {});
    }
  }

  // only a public client's POST /token can be a retried refresh: any other request passes straight on
  return (ctx, next) => (graceSeconds > 0 && ctx.method === 'POST' && ctx.path === tokenPath && ctx.get('authorization') === '' ? answer(ctx, next) : next());

  /** The answer to a refresh request: replayed within the window, or the engine's as the claimant. */
  async function answer(ctx: Context, next: Next): Promise<void> {
    let refresh: { token: string; clientId: string } | undefined;
    await adjustFormParams(ctx, (params) => {
      refresh = publicRefresh(params);
      return false;
    });
    if (!refresh) return next();
    const { token, clientId } = refresh;
    const key = rotationKey(token);

    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const record = await rotations.get(key);
      if (record?.outcome !== undefined) {
        const answer = unsealAnswer(token, record.outcome);
        if (answer && answer.clientId === clientId) {
          options.onReplay?.();
          respond(ctx, answer.status, answer.body);
          return;
        }
        // not ours to replay: the engine decides
        return next();
      }
      if (!record && (await rotations.claim(key, CLAIM_SECONDS))) {
        return rotate(ctx, next, key, token, clientId);
      }
      // another request is rotating this token (or released it just now): wait for its answer
      if (Date.now() >= deadline) {
        respond(ctx, 400, { error: 'invalid_grant', error_description: 'a refresh with this token is already in progress' });
        return;
      }
      await sleep(POLL_MS);
    }
  }
}
