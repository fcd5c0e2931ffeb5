/**
 * The configuration most flow tests run with: two MCP servers and one client per kind.
 */
import type { ConfigInput } from '../../src/config/schema.js';

export const NOTES = 'https://notes.example.com/mcp';
export const CALENDAR = 'https://calendar.example.com/mcp';
export const REDIRECT = 'http://127.0.0.1:9/callback';
export const SECRET = 'a-test-secret-that-is-long-enough';

export const PASSWORD = 'correct horse battery staple';

/** The example notes MCP server (examples/notes-mcp-server) as the authorization server knows it, at `uri`. */
export function exampleNotesResource(uri: string) {
  return {
    uri,
    name: 'Notes',
    scopes: {
      'notes:read': { description: 'Read your notes' },
      'notes:write': { description: 'Create notes' },
      'notes:delete': { description: 'Delete notes', dangerous: true },
    },
    defaultScopes: ['notes:read'],
  };
}

export function fixtureConfig(): Pick<ConfigInput, 'resources' | 'clients'> {
  return {
    resources: [
      {
        uri: NOTES,
        aliases: ['https://notes.example.com'],
        name: 'Notes',
        scopes: {
          'notes:read': { description: 'Read your notes' },
          'notes:write': { description: 'Create and edit notes' },
          'notes:delete': { description: 'Delete notes', dangerous: true },
        },
        defaultScopes: ['notes:read'],
        accessTokenTtl: 600,
        resourceServerClients: ['notes-server'],
      },
      {
        uri: CALENDAR,
        name: 'Calendar',
        scopes: { 'calendar:read': { description: 'See your calendar' } },
        defaultScopes: ['calendar:read'],
      },
    ],
    clients: [
      { client_id: 'web-app', client_name: 'Web App', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], application_type: 'native' },
      { client_id: 'confidential-web', client_secret: SECRET, redirect_uris: [REDIRECT], resources: [NOTES] },
      { client_id: 'nightly-report', client_secret: SECRET, grant_types: ['client_credentials'], scope: 'notes:read', resources: [NOTES] },
      { client_id: 'report-post', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'] },
      {
        client_id: 'tv-app',
        client_name: 'Living-room TV',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      },
      { client_id: 'notes-server', client_secret: SECRET, grant_types: ['client_credentials'], resources: [NOTES] },
      {
        client_id: 'xss-app',
        client_name: '<script>alert(1)</script>',
        token_endpoint_auth_method: 'none',
        redirect_uris: [REDIRECT],
      },
    ],
  };
}
