/**
 * A notes MCP server protected by mcp-authz: the SDK's `McpServer` over Streamable HTTP
 * (stateless), on Express, with `mcp-authz/verifier` in front of it.
 *
 * - `GET /.well-known/oauth-protected-resource/mcp`: the RFC 9728 document, which tells an
 *   MCP host where to get a token (`nodeMetadataHandler`).
 * - `POST /mcp`: a bearer token for this server is required (`nodeMiddleware`); a
 *   `tools/call` needs the tool's scope (`TOOL_SCOPES`) and is refused with 403
 *   `insufficient_scope` before the tool runs; `tools/list` shows only the tools the token may
 *   call, because each request gets its own `McpServer` with only those tools registered, so
 *   the list is marked `cacheScope: "private"` (`privateToolLists`): no shared cache may serve it
 *   to another token. `Mcp-Method` / `Mcp-Name` headers that do not match the body → 400.
 * - `GET` / `DELETE /mcp`: 405 (a stateless server has no SSE stream and no session).
 *
 * Notes live in memory, per person (the token's `sub`): nobody sees anyone else's notes.
 *
 * Every tools/call is reported (`toolCalls`): with NOTES_CLIENT_ID and NOTES_CLIENT_SECRET (a
 * client listed in the resource's `resourceServerClients`) to mcp-authz's audit log, else as one
 * JSON line on standard error.
 *
 *   npm run example:notes      (PORT=3001, AUTHZ_ISSUER=http://localhost:4000, MCP_RESOURCE=http://localhost:$PORT/mcp)
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express, type Request, type Response } from 'express';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
// This example lives inside the mcp-authz repository. An MCP server in its own repository
// installs mcp-authz and imports the same names from 'mcp-authz/verifier'.
import {
  allowedTool,
  createVerifier,
  nodeMetadataHandler,
  nodeMiddleware,
  privateToolLists,
  type ApprovalAnswerMode,
  type AuthInfo,
  type ToolApprovals,
  type ToolCallOptions,
  type ToolScopes,
  type Verifier,
} from '../../src/verifier/index.js';

/** The scope each tool needs. `notes:delete` is marked `dangerous` in mcp-authz.yaml: never preselected on the consent page. */
export const TOOL_SCOPES: ToolScopes = {
  list_notes: ['notes:read'],
  read_note: ['notes:read'],
  add_note: ['notes:write'],
  delete_note: ['notes:delete'],
  share_note: ['notes:share'],
};

/** The tools each call of which a person approves (see {@link notesToolApprovals}). */
const APPROVAL_TOOLS = { delete_note: true, share_note: true } as const;

/** Every scope this server understands, published as `scopes_supported` (the SDK client asks for these). */
export const SCOPES = ['notes:read', 'notes:write', 'notes:delete', 'notes:share'];

const MAX_NOTES_PER_PERSON = 1000;
const MAX_NOTE_LENGTH = 10_000;
/** Most recipients one `share_note` call sends a note to. */
export const MAX_RECIPIENTS = 1000;

export interface Note {
  id: string;
  text: string;
  createdAt: string;
}

/** In-memory notes, by owner. Every method takes the owner: one person's notes are unreachable with another's identity. */
export class NoteStore {
  readonly #byOwner = new Map<string, Map<string, Note>>();
  #sent = 0;

  #notes(owner: string): Map<string, Note> {
    let notes = this.#byOwner.get(owner);
    if (!notes) this.#byOwner.set(owner, (notes = new Map()));
    return notes;
  }

  list(owner: string): Note[] {
    return [...(this.#byOwner.get(owner)?.values() ?? [])];
  }

  get(owner: string, id: string): Note | undefined {
    return this.#byOwner.get(owner)?.get(id);
  }

  /** The new note, or undefined when the owner already has the maximum number of notes. */
  add(owner: string, text: string): Note | undefined {
    const notes = this.#notes(owner);
    if (notes.size >= MAX_NOTES_PER_PERSON) return undefined;
    const note = { id: randomUUID().slice(0, 8), text, createdAt: new Date().toISOString() };
    notes.set(note.id, note);
    return note;
  }

  delete(owner: string, id: string): boolean {
    return this.#byOwner.get(owner)?.delete(id) ?? false;
  }

  /** Sends a copy of the note to each recipient (here: counts the sends); how many, or undefined when there is no such note. */
  share(owner: string, id: string, recipients: readonly string[]): number | undefined {
    const note = this.get(owner, id);
    if (!note) return undefined;
    const unique = new Set(recipients.map((r) => r.toLowerCase()));
    this.#sent += unique.size;
    return unique.size;
  }

  /** How many copies `share` has sent in all (for the example's tests). */
  get sent(): number {
    return this.#sent;
  }

}

/** The first words of a note, to name it in an approval summary. */
function excerpt(note: Note): string {
  const line = note.text.split('\n')[0]!.trim();
  return line.length <= 60 ? line : `${line.slice(0, 59)}…`;
}

/**
 * The tools a person approves call by call (mcp-authz asks them on its approval page, showing
 * this summary): deleting a note, and sending one to a list of people. The recipients' addresses
 * are `sensitive`: they never leave this server (not in the approval request, not in reports);
 * the person sees how many there are.
 */
export function notesToolApprovals(store: NoteStore): ToolApprovals {
  const named = (auth: Pick<AuthInfo, 'clientId' | 'extra'>, id: unknown) => {
    const note = typeof id === 'string' ? store.get(ownerOf(auth), id) : undefined;
    return note ? `note '${excerpt(note)}'` : `note ${JSON.stringify(id)} (there is no such note)`;
  };
  return {
    delete_note: { summary: ({ id }, auth) => `Delete ${named(auth, id)}` },
    share_note: {
      summary: ({ id, recipients }, auth) => {
        const count = Array.isArray(recipients) ? recipients.length : 0;
        return `Send ${named(auth, id)} to ${count} ${count === 1 ? 'recipient' : 'recipients'}`;
      },
      sensitive: ['recipients'],
    },
  };
}

const text = (value: unknown) => ({ content: [{ type: 'text' as const, text: typeof value === 'string' ? value : JSON.stringify(value) }] });
const failure = (message: string) => ({ ...text(message), isError: true });

/** Whose notes a request works on: the person (`sub`) the token was issued for, else the client (client credentials). */
export function ownerOf(auth: Pick<AuthInfo, 'clientId' | 'extra'> | undefined): string {
  if (!auth) return 'anonymous';
  const subject = auth.extra?.subject;
  return typeof subject === 'string' && subject ? `user:${subject}` : `client:${auth.clientId}`;
}

/**
 * The MCP server for one request: only the tools `mayCall` allows are registered, so
 * `tools/list` shows exactly what the token may call (and a server with no allowed tool
 * declares no `tools` capability).
 */
export function notesMcpServer(store: NoteStore, owner: string, mayCall: (tool: string) => boolean): McpServer {
  const server = new McpServer({ name: 'notes-example', version: '1.0.0' });

  if (mayCall('list_notes')) {
    server.registerTool(
      'list_notes',
      { title: 'List notes', description: 'List your notes (id, text, creation time).', annotations: { readOnlyHint: true } },
      async () => text({ notes: store.list(owner) }),
    );
  }
  if (mayCall('read_note')) {
    server.registerTool(
      'read_note',
      { title: 'Read a note', description: 'Read one of your notes by id.', inputSchema: { id: z.string().min(1).max(64) }, annotations: { readOnlyHint: true } },
      async ({ id }) => {
        const note = store.get(owner, id);
        return note ? text(note) : failure(`no note with id ${id}`);
      },
    );
  }
  if (mayCall('add_note')) {
    server.registerTool(
      'add_note',
      { title: 'Add a note', description: 'Add a note; returns it with its id.', inputSchema: { text: z.string().min(1).max(MAX_NOTE_LENGTH) } },
      async ({ text: body }) => {
        const note = store.add(owner, body);
        return note ? text(note) : failure(`you already have ${MAX_NOTES_PER_PERSON} notes`);
      },
    );
  }
  if (mayCall('delete_note')) {
    server.registerTool(
      'delete_note',
      {
        title: 'Delete a note',
        description: 'Delete one of your notes by id. Cannot be undone.',
        inputSchema: { id: z.string().min(1).max(64) },
        annotations: { destructiveHint: true, idempotentHint: true },
      },
      async ({ id }) => (store.delete(owner, id) ? text({ deleted: id }) : failure(`no note with id ${id}`)),
    );
  }
  if (mayCall('share_note')) {
    server.registerTool(
      'share_note',
      {
        title: 'Share a note',
        description: 'Send a copy of one of your notes to a list of e-mail addresses. Cannot be undone.',
        inputSchema: { id: z.string().min(1).max(64), recipients: z.array(z.string().email().max(254)).min(1).max(MAX_RECIPIENTS) },
        annotations: { destructiveHint: false, openWorldHint: true },
      },
      async ({ id, recipients }) => {
        const sent = store.share(owner, id, recipients);
        return sent === undefined ? failure(`no note with id ${id}`) : text({ shared: id, recipients: sent });
      },
    );
  }
  return server;
}

export interface NotesAppOptions {
  /** the mcp-authz issuer, e.g. `http://localhost:4000` */
  issuer: string;
  /** this server's canonical URL, e.g. `http://localhost:3001/mcp`: tokens must carry it as `aud` */
  resource: string;
  /** follow the authorization server's revocation feed (default true) */
  revocation?: boolean;
  /** `false` serves the same MCP server with no verifier at all (for the benchmark); default true */
  auth?: boolean;
  /** the notes (default: a new, empty store) */
  store?: NoteStore;
  /** this server's client at mcp-authz (listed in the resource's `resourceServerClients`): tool calls are then reported to its audit log */
  resourceServer?: { clientId: string; clientSecret: string };
  /** where tool call reports go (default: the authorization server with `resourceServer`, else one JSON line each on standard error) */
  toolCalls?: ToolCallOptions;
  /** tool → arguments whose values never appear in a tool call report */
  sensitiveArguments?: Readonly<Record<string, readonly string[]>>;
  /** how an MCP client is told a call waits for approval (default `'auto'`) */
  approvalAnswer?: ApprovalAnswerMode;
}

export interface NotesApp {
  /** the Express application: mount it on an http server or call `app.listen` */
  app: Express;
  /** the verifier (undefined with `auth: false`) */
  verifier: Verifier | undefined;
  store: NoteStore;
  /** stops the verifier's revocation feed */
  close(): Promise<void>;
}

const methodNotAllowed = (_req: Request, res: Response) => {
  res
    .status(405)
    .set('Allow', 'POST')
    .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
};

export function createNotesApp(options: NotesAppOptions): NotesApp {
  const store = options.store ?? new NoteStore();
  const app = express();
  app.disable('x-powered-by');

  let verifier: Verifier | undefined;
  if (options.auth === false) {
    // no verifier: someone must parse the body
    app.post('/mcp', express.json({ limit: '1mb' }), (req, res) => handleMcp(req, res));
  } else {
    verifier = createVerifier({
      issuer: options.issuer,
      resource: options.resource,
      scopesSupported: SCOPES,
      resourceName: 'Notes (example)',
      // the revocation feed is followed by default; `false` would accept revoked tokens until they expire
      ...(options.revocation === false ? { revocation: false as const } : {}),
      ...(options.resourceServer ? { resourceServer: options.resourceServer } : {}),
      ...(options.toolCalls ? { toolCalls: options.toolCalls } : {}),
    });
    // GET /.well-known/oauth-protected-resource/mcp (RFC 9728)
    app.use(nodeMetadataHandler(verifier));
    // 401 without a valid token for this resource, 403 when a tools/call lacks the tool's scope;
    // it reads the JSON-RPC body itself (after checking the token) and leaves it in req.body
    // delete_note and share_note run only with a person's approval of each call, which needs this
    // server's own client at mcp-authz; without one they are not offered at all (never run silently)
    const mcpAuth = nodeMiddleware(verifier, {
      toolScopes: TOOL_SCOPES,
      ...(options.resourceServer ? { toolApprovals: notesToolApprovals(store) } : {}),
      ...(options.approvalAnswer ? { approvalAnswer: options.approvalAnswer } : {}),
      ...(options.sensitiveArguments ? { sensitiveArguments: options.sensitiveArguments } : {}),
    });
    app.options('/mcp', mcpAuth); // CORS preflight for browser-based MCP hosts
    app.post('/mcp', mcpAuth, (req, res) => handleMcp(req, res));
  }
  app.get('/mcp', methodNotAllowed);
  app.delete('/mcp', methodNotAllowed);

  async function handleMcp(req: Request, res: Response): Promise<void> {
    // set by nodeMiddleware (the verifier's AuthInfo); the SDK transport passes it to tools as `extra.authInfo`
    const auth = (req as Request & { auth?: Pick<AuthInfo, 'clientId' | 'scopes' | 'extra'> }).auth;
    const approvable = (tool: string) => options.resourceServer !== undefined || !Object.hasOwn(APPROVAL_TOOLS, tool);
    const mayCall = (tool: string) => !verifier || (auth !== undefined && approvable(tool) && allowedTool(tool, auth.scopes, TOOL_SCOPES));
    const server = notesMcpServer(store, ownerOf(auth), mayCall);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    // the tool list depends on the token: private to its authorization context (MCP 2026-07-28 caching)
    if (verifier) privateToolLists(transport);
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (err) {
      console.error('error handling an MCP request:', err);
      if (!res.headersSent) res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
    }
  }

  return {
    app,
    verifier,
    store,
    close: async () => {
      await verifier?.close();
    },
  };
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT || 3001);
  const issuer = process.env.AUTHZ_ISSUER || 'http://localhost:4000';
  const resource = process.env.MCP_RESOURCE || `http://localhost:${port}/mcp`;
  // this server's client at mcp-authz (mcp-authz.yaml: notes-mcp-server, its secret in notes-server.secret)
  const clientId = process.env.NOTES_CLIENT_ID || 'notes-mcp-server';
  const clientSecret = process.env.NOTES_CLIENT_SECRET || readSecretFile(process.env.NOTES_CLIENT_SECRET_FILE || 'examples/notes-mcp-server/notes-server.secret');
  const notes = createNotesApp({ issuer, resource, ...(clientSecret ? { resourceServer: { clientId, clientSecret } } : {}) });
  const server: Server = await new Promise((done, fail) => {
    const listening = notes.app.listen(port, (err?: Error) => (err ? fail(err) : done(listening)));
  });
  console.log(`notes MCP server listening on port ${port}`);
  console.log(`  MCP endpoint       ${resource}`);
  console.log(`  resource metadata  ${notes.verifier!.metadataUrl}`);
  console.log(`  authorization      ${issuer}`);
  if (!clientSecret) console.warn('  no client secret (NOTES_CLIENT_SECRET or notes-server.secret): delete_note and share_note, which need a person\'s approval per call, are not offered; tool calls are logged here only');
  notes.verifier!.ready().then(
    () => console.log(`  connected to ${issuer} (keys and revocation feed)`),
    (err: Error) => console.warn(`  cannot reach the authorization server at ${issuer} yet (${err.message}); requests get 503 until it is up`),
  );
  const stop = () => {
    void notes.close();
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** The secret in `path` (trimmed), or undefined when there is no such file. */
function readSecretFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
