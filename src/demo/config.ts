/**
 * The demo's configuration: what `mcp-authz serve` runs with when it is started without a
 * config file (README, "Try it"). One MCP server, the example Notes server
 * (examples/notes-mcp-server) that starts alongside on `mcpPort`; the demo's own MCP host page
 * (`/demo`, src/demo/host.ts) as a client; and the public client of an MCP host on this
 * machine that the example's walk-through uses. Registration stays open, so MCP clients such
 * as the MCP Inspector register themselves.
 */
import { randomBytes } from 'node:crypto';
import type { ConfigInput } from '../config/schema.js';

/** Where the Notes MCP server listens unless `MCP_AUTHZ_DEMO_MCP_PORT` says otherwise. */
export const DEMO_MCP_PORT = 3001;

/** The client id of the demo's MCP host page. */
export const DEMO_HOST_CLIENT_ID = 'mcp-authz-demo-host';

/**
 * The client id the Notes MCP server uses towards this server (a resource-server client: it
 * asks for tool-call approvals and reports tool calls). Its secret is made at each start and
 * handed to the Notes server in the same process.
 */
export const DEMO_NOTES_SERVER_CLIENT_ID = 'mcp-authz-demo-notes-server';

/** The path of the demo host page below the issuer; its callback is `${DEMO_PATH}/callback`. */
export const DEMO_PATH = '/demo';

/** The Notes MCP server's URL in the demo: the `resource` clients ask for and the tokens' `aud`. */
export function demoResourceUri(mcpPort: number): string {
  return `http://localhost:${mcpPort}/mcp`;
}

/** The keys the demo adds to a configuration whose issuer is `issuer`. */
export function demoConfig(issuer: string, mcpPort: number): Pick<ConfigInput, 'resources' | 'clients' | 'demo'> {
  const resource = demoResourceUri(mcpPort);
  return {
    demo: { mcpPort },
    resources: [
      {
        uri: resource,
        name: 'Notes (demo)',
        scopes: {
          'notes:read': { description: 'Read your notes', tools: ['list_notes', 'read_note'] },
          'notes:write': { description: 'Add notes', tools: ['add_note'] },
          'notes:delete': { description: 'Delete your notes', tools: ['delete_note'], dangerous: true },
          'notes:share': { description: 'Send your notes to other people', tools: ['share_note'], dangerous: true },
        },
        defaultScopes: ['notes:read'],
        resourceServerClients: [DEMO_NOTES_SERVER_CLIENT_ID],
      },
    ],
    clients: [
      {
        client_id: DEMO_NOTES_SERVER_CLIENT_ID,
        client_name: 'Notes MCP server (demo)',
        client_secret: randomBytes(24).toString('base64url'),
        grant_types: ['client_credentials'],
        resources: [resource],
        scope: 'notes:read',
      },
      {
        client_id: DEMO_HOST_CLIENT_ID,
        client_name: 'mcp-authz demo host',
        token_endpoint_auth_method: 'none',
        redirect_uris: [`${issuer}${DEMO_PATH}/callback`],
        resources: [resource],
      },
      {
        client_id: 'local-mcp-host',
        client_name: 'Local MCP host',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1:33418/callback', 'http://localhost:33418/callback'],
      },
    ],
  };
}
