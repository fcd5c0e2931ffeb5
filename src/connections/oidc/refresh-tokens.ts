/**
 * The upstream refresh token of each account of an OIDC connection (`checkOnRefresh`), kept in
 * the store (so every replica has it) for as long as a grant can live, sealed (src/keys/seal.ts,
 * bound to the connection and account): the store holds no usable token. Used only to ask the
 * upstream, at a refresh of ours, whether the person is still there; never logged, audited or
 * passed on.
 */
import type { Store } from '../../../adapters/contract.js';
import { Sealer } from '../../keys/seal.js';

const MODEL = 'OidcUpstreamRefreshToken';
const LABEL = 'mcp-authz/oidc-upstream-refresh-token/aes-256-gcm';

export class UpstreamRefreshTokens {
  readonly #sealer: Sealer;

  constructor(
    private readonly store: Store,
    private readonly connection: string,
    /** seconds a record is kept: the grant lifetime */
    private readonly ttl: number,
    cookieKeys: readonly string[],
  ) {
    this.#sealer = new Sealer(cookieKeys, LABEL);
  }

  #id = (accountId: string) => `${this.connection}:${accountId}`;

  async remember(accountId: string, refreshToken: string): Promise<void> {
    const sealed = this.#sealer.seal(refreshToken, this.#id(accountId));
    await this.store.model(MODEL).upsert(this.#id(accountId), { connection: this.connection, sealed } as never, this.ttl);
  }

  /** The token, or undefined when none is kept (or it no longer opens: the cookie keys it was sealed with are gone). */
  async recall(accountId: string): Promise<string | undefined> {
    const found = (await this.store.model(MODEL).find(this.#id(accountId))) as { sealed?: unknown } | undefined;
    return typeof found?.sealed === 'string' ? this.#sealer.open(found.sealed, this.#id(accountId)) : undefined;
  }

  async forget(accountId: string): Promise<void> {
    await this.store.model(MODEL).destroy(this.#id(accountId));
  }
}
