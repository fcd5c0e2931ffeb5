/**
 * The demo's MCP server: the example Notes server (examples/notes-mcp-server), protected by
 * this authorization server through `mcp-authz/verifier`, started by `mcp-authz serve` next to
 * it on `demo.mcpPort`. It comes with the repository and needs the repository's development
 * dependencies (express, the MCP SDK); where it cannot start, `serve` says why and goes on.
 */
import { createServer } from 'node:http';
import type { Config } from '../config/schema.js';
import { DEMO_NOTES_SERVER_CLIENT_ID, demoResourceUri } from './config.js';

export type NotesServer = { url: string; close(): Promise<void> } | { problem: string };

export async function startNotesServer(config: Config & { demo: NonNullable<Config['demo']> }): Promise<NotesServer> {
  const resource = demoResourceUri(config.demo.mcpPort);
  let example: typeof import('../../examples/notes-mcp-server/server.js');
  try {
    example = await import('../../examples/notes-mcp-server/server.js');
  } catch (err) {
    return { problem: `the example Notes MCP server cannot be loaded here (${(err as Error).message.split('\n')[0]}); it needs a clone of the repository with npm install` };
  }
  // its own client (made with a fresh secret by src/demo/config.ts): approvals of delete_note and
  // share_note calls, and reports of every tool call to the audit log
  const own = config.clients.find((client) => client.client_id === DEMO_NOTES_SERVER_CLIENT_ID);
  const resourceServer = own?.client_secret ? { clientId: own.client_id, clientSecret: own.client_secret } : undefined;
  const notes = example.createNotesApp({ issuer: config.issuer, resource, ...(resourceServer ? { resourceServer } : {}) });
  const http = createServer(notes.app);
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(config.demo.mcpPort, config.host, () => resolve());
    });
  } catch (err) {
    await notes.close();
    const code = (err as NodeJS.ErrnoException).code;
    return {
      problem:
        code === 'EADDRINUSE'
          ? `port ${config.demo.mcpPort} is in use, so the Notes MCP server did not start: set MCP_AUTHZ_DEMO_MCP_PORT to a free port`
          : `the Notes MCP server did not start (${code ?? (err as Error).message})`,
    };
  }
  return {
    url: resource,
    async close() {
      await notes.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
