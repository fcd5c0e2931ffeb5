/**
 * The baseline the benchmarks measure mcp-authz against: a bare `oidc-provider` with nothing of
 * ours but the store (the same SQLite file or Redis, through the store's plain model interface),
 * configured for the same token: client credentials with `client_secret_basic`, a resource
 * indicator giving an ES256 JWT access token with the resource as `aud`, and (for the flow
 * benchmark) authorization code with PKCE, refresh, and the device grant with oidc-provider's
 * dev interactions (its built-in sign-in and consent pages, which accept any password).
 *
 *   node dist/bench/bare-oidc-provider.js <port> <sqlite DIR | redis URL>
 *
 * Prints `listening <issuer>` once it serves. The engine is oidc-provider as published; with
 * BARE_ENGINE_FIX=1 it loads with the one fix mcp-authz applies to it (src/provider/engine-fix.ts),
 * which shows how much of a ratio is our code and how much is that fix (docs/performance.md).
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { generateKeyPair, exportJWK } from 'jose';
import { openStore } from '../adapters/index.js';
import { registerEngineFix } from '../src/provider/engine-fix-hook.js';
import { BENCH_CLIENT, BENCH_RESOURCE, BENCH_SCOPES, BENCH_SECRET, FLOW_CLIENT, FLOW_REDIRECT, DEVICE_CLIENT } from './fixtures.js';

if (process.env.BARE_ENGINE_FIX === '1') registerEngineFix();
const { default: Provider } = await import('oidc-provider');

const [portArg, kind, where] = process.argv.slice(2);
const port = Number(portArg);
if (!port || (kind !== 'sqlite' && kind !== 'redis') || !where) {
  console.error('usage: bare-oidc-provider <port> sqlite <dir> | redis <url>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const store = await openStore(kind === 'redis' ? { dataDir: '.', redis: { mode: 'standalone', url: where }, redisKeyPrefix: `bare${port}:` } : { dataDir: where, redisKeyPrefix: '' });

/** oidc-provider's adapter straight onto the store's models: nothing added. */
class StoreAdapter implements Adapter {
  readonly #model;
  constructor(readonly name: string) {
    this.#model = store.model(name);
  }
  upsert(id: string, payload: AdapterPayload, expiresIn: number) {
    return this.#model.upsert(id, payload as Record<string, unknown>, expiresIn);
  }
  find(id: string) {
    return this.#model.find(id) as Promise<AdapterPayload | undefined>;
  }
  findByUserCode(userCode: string) {
    return this.#model.findByUserCode(userCode) as Promise<AdapterPayload | undefined>;
  }
  findByUid(uid: string) {
    return this.#model.findByUid(uid) as Promise<AdapterPayload | undefined>;
  }
  consume(id: string) {
    return this.#model.consume(id);
  }
  destroy(id: string) {
    return this.#model.destroy(id);
  }
  revokeByGrantId(grantId: string) {
    return this.#model.revokeByGrantId(grantId);
  }
}

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const rsa = await generateKeyPair('RS256', { extractable: true });
const provider = new Provider(issuer, {
  adapter: StoreAdapter,
  jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'es', alg: 'ES256', use: 'sig' }, { ...(await exportJWK(rsa.privateKey)), kid: 'rs', alg: 'RS256', use: 'sig' }] },
  clients: [
    { client_id: BENCH_CLIENT, client_secret: BENCH_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    { client_id: FLOW_CLIENT, token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [FLOW_REDIRECT], application_type: 'native' },
    { client_id: DEVICE_CLIENT, token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] },
  ],
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', ...BENCH_SCOPES],
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      useGrantedResource: async () => true,
      defaultResource: async () => BENCH_RESOURCE,
      getResourceServerInfo: async () => ({
        audience: BENCH_RESOURCE,
        scope: BENCH_SCOPES.join(' '),
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  // the dev interactions' consent grants what is asked
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(ctx.oidc.client!.clientId);
    return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
const stop = () => {
  void store.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
