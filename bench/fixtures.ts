/**
 * What every benchmark's servers are configured with, the same for mcp-authz and the bare
 * engine: one MCP server (resource), a confidential client-credentials client, a public client
 * for the authorization code flow and one for the device flow, and an account.
 */
export const BENCH_RESOURCE = 'https://notes.example.com/mcp';
export const BENCH_SCOPES = ['notes:read', 'notes:write'];
export const BENCH_CLIENT = 'bench-service';
export const BENCH_SECRET = 'a-benchmark-secret-that-is-long-enough';
export const FLOW_CLIENT = 'bench-host';
export const FLOW_REDIRECT = 'http://127.0.0.1:9/callback';
export const DEVICE_CLIENT = 'bench-device';
export const BENCH_USER = 'bench';
export const BENCH_PASSWORD = 'a benchmark password';

/** The mcp-authz config file (YAML is JSON) for the same set-up. */
export function benchConfig(): Record<string, unknown> {
  return {
    resources: [
      {
        uri: BENCH_RESOURCE,
        name: 'Notes',
        scopes: { 'notes:read': { description: 'Read your notes' }, 'notes:write': { description: 'Add notes' } },
        defaultScopes: ['notes:read'],
      },
    ],
    clients: [
      { client_id: BENCH_CLIENT, client_secret: BENCH_SECRET, grant_types: ['client_credentials'], scope: BENCH_SCOPES.join(' ') },
      { client_id: FLOW_CLIENT, token_endpoint_auth_method: 'none', application_type: 'native', redirect_uris: [FLOW_REDIRECT] },
      { client_id: DEVICE_CLIENT, token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'] },
    ],
  };
}
