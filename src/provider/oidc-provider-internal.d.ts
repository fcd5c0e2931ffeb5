// oidc-provider's per-instance internals (src/provider/token-limit.ts): the map of grant type
// handlers the token endpoint calls once the client is authenticated.
declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  import type Provider from 'oidc-provider';
  export default function instance(provider: Provider): { grantTypeHandlers?: unknown; responseModes?: unknown };
}
