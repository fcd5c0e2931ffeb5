/**
 * `mcp-remote` (an independent, widely used npm MCP client: a stdio ↔ Streamable HTTP proxy
 * with its own OAuth client) against the example notes MCP server and us. It runs as a child
 * process: it discovers us from the server's 401, registers itself (DCR), prints and "opens"
 * the authorization URL, and waits on its own loopback callback server. The test signs in
 * and consents through our pages with the fetch browser, which follows our redirect to that
 * callback server; mcp-remote redeems the code and then proxies MCP JSON-RPC from its stdin.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server.js';
import { Browser, authorize } from '../helpers/browser-driver.js';
import { exampleNotesResource, PASSWORD } from '../helpers/fixtures.js';
import { jwt } from '../helpers/rp.js';
import { createNotesApp, type NotesApp } from '../../examples/notes-mcp-server/server.js';

/** the package's `mcp-remote` bin (compiled tests run from dist/test/clients, the package root is three up) */
const PROXY = resolve(import.meta.dirname, '../../../node_modules/mcp-remote/dist/proxy.js');
const STEP_TIMEOUT = 30_000;

interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

type ToolResult = { content: Array<{ type: string; text: string }>; isError?: boolean };
const textOf = (result: unknown) => (result as ToolResult).content[0]!.text;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const { port } = probe.address() as AddressInfo;
  await new Promise((done) => probe.close(done));
  return port;
}

/** mcp-remote as a child process, with its stderr kept and its stdout read as JSON-RPC lines. */
class McpRemote {
  stderr = '';
  readonly #responses = new Map<number, JsonRpcResponse>();
  readonly #waiters: Array<() => void> = [];
  #stdoutBuffer = '';
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
      this.#wake();
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.#stdoutBuffer += chunk;
      let newline: number;
      while ((newline = this.#stdoutBuffer.indexOf('\n')) >= 0) {
        const line = this.#stdoutBuffer.slice(0, newline).trim();
        this.#stdoutBuffer = this.#stdoutBuffer.slice(newline + 1);
        if (!line) continue;
        const message = JSON.parse(line) as Partial<JsonRpcResponse> & { method?: string };
        if (typeof message.id === 'number' && !message.method) this.#responses.set(message.id, message as JsonRpcResponse);
      }
      this.#wake();
    });
    child.on('exit', (code, signal) => {
      this.#exit = { code, signal };
      this.#wake();
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** Resolves with `check()`'s first non-undefined value; fails on timeout or when the child exits first. */
  async until<T>(what: string, check: () => T | undefined, timeout = STEP_TIMEOUT): Promise<T> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (this.#exit) throw new Error(`mcp-remote exited (${JSON.stringify(this.#exit)}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, Math.min(left, 250));
        this.#waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
  }

  send(message: Record<string, unknown>): void {
    this.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
  }

  async request(id: number, method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    this.send({ id, method, params });
    const response = await this.until(`the answer to ${method} (id ${id})`, () => this.#responses.get(id));
    assert.equal(response.error, undefined, `${method} failed: ${JSON.stringify(response.error)}`);
    assert.ok(response.result, `${method} has no result`);
    return response.result;
  }

  async stop(): Promise<void> {
    if (this.#exit) return;
    this.child.stdin.end();
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await this.until('mcp-remote to exit', () => this.#exit, 10_000).catch(() => undefined);
    clearTimeout(killer);
  }
}

let as: TestServer;
let http: Server;
let notes: NotesApp;
let mcpUrl: string;
let workDir: string;
let configDir: string;
let openedFile: string;
let callbackPort: number;
let remote: McpRemote;

let stderrShown = false;
/** Runs one step; the first failing one carries mcp-remote's stderr. */
async function step<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Error) {
      err.message += stderrShown ? '\n(mcp-remote stderr: see the first failure)' : `\n--- mcp-remote stderr ---\n${remote?.stderr ?? '(not started)'}`;
      stderrShown = true;
    }
    throw err;
  }
}

/** A file mcp-remote stored in its config directory (`<hash>_<name>`), parsed. */
function stored(name: string): Record<string, unknown> | undefined {
  if (!existsSync(configDir)) return undefined;
  const versionDir = readdirSync(configDir).find((d) => d.startsWith('mcp-remote'));
  if (!versionDir) return undefined;
  const file = readdirSync(join(configDir, versionDir)).find((f) => f.endsWith(`_${name}`));
  return file ? (JSON.parse(readFileSync(join(configDir, versionDir, file), 'utf8')) as Record<string, unknown>) : undefined;
}

before(async () => {
  http = createServer();
  await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
  mcpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  // no static clients: mcp-remote can only get in by registering itself
  as = await startServer({ store: 'sqlite', config: { resources: [exampleNotesResource(mcpUrl)], clients: [] } });
  notes = createNotesApp({ issuer: as.issuer, resource: mcpUrl, revocation: false });
  http.on('request', notes.app);

  workDir = mkdtempSync(join(tmpdir(), 'mcp-remote-test-'));
  configDir = join(workDir, 'config');
  openedFile = join(workDir, 'opened-urls');
  // "the browser": the `open` package runs its bundled xdg-open, which (no desktop detected)
  // runs $BROWSER with the URL; this one only records it
  const browserScript = join(workDir, 'record-browser');
  writeFileSync(browserScript, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${openedFile}'\n`);
  chmodSync(browserScript, 0o755);

  callbackPort = await freePort();
  const child = spawn(process.execPath, [PROXY, mcpUrl, String(callbackPort), '--allow-http'], {
    cwd: workDir,
    stdio: ['pipe', 'pipe', 'pipe'],
    // no desktop session variables: xdg-open must take its generic path to $BROWSER
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: workDir, TMPDIR: workDir, MCP_REMOTE_CONFIG_DIR: configDir, BROWSER: browserScript },
  });
  remote = new McpRemote(child);
});

after(async () => {
  await remote?.stop();
  await notes?.close();
  if (http) {
    http.closeAllConnections();
    await new Promise((done) => http.close(done));
  }
  await as?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('mcp-remote (child process) → notes MCP server ← mcp-authz', () => {
  let authUrl: URL;
  let noteText: string;

  it('registers itself and asks a person to authorize with PKCE and resource', () =>
    step(async () => {
      const printed = await remote.until('the authorization URL on stderr', () =>
        /Please authorize this client by visiting:\s*\n(\S+)/.exec(remote.stderr)?.[1],
      );
      authUrl = new URL(printed);
      assert.equal(authUrl.origin + authUrl.pathname, `${as.issuer}/auth`);
      assert.equal(authUrl.searchParams.get('response_type'), 'code');
      assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
      assert.ok(authUrl.searchParams.get('code_challenge'));
      assert.ok(authUrl.searchParams.get('state'));
      assert.equal(authUrl.searchParams.get('resource'), mcpUrl);
      const redirectUri = new URL(authUrl.searchParams.get('redirect_uri') ?? '');
      assert.equal(redirectUri.port, String(callbackPort), 'the callback port we gave it');

      const client = await remote.until('the stored registration', () => stored('client_info.json'));
      assert.equal(authUrl.searchParams.get('client_id'), client.client_id);
      assert.equal(client.client_secret, undefined, 'a public client gets no secret');
      assert.equal(client.token_endpoint_auth_method, 'none');

      // it also tried to open a browser: our recorder got the same authorization request
      const opened = await remote.until('the browser to be opened', () => (existsSync(openedFile) ? readFileSync(openedFile, 'utf8').trim() : undefined));
      assert.equal(new URL(opened).searchParams.get('state'), authUrl.searchParams.get('state'));
    }));

  it('a person signs in and consents; the redirect reaches mcp-remote, which redeems the code', () =>
    step(async () => {
      assert.ok(authUrl, 'no authorization URL: the previous step failed');
      const browser = new Browser();
      const redirectUri = authUrl.searchParams.get('redirect_uri')!;
      const callback = await authorize(browser, authUrl.href, redirectUri, PASSWORD);
      assert.equal(callback.searchParams.get('error'), null, `authorization failed: ${callback.search}`);
      assert.ok(callback.searchParams.get('code'));
      // the browser follows our redirect to mcp-remote's loopback callback server
      const page = await browser.go(callback.href);
      assert.equal(page.status, 200, page.html);
      assert.match(page.html, /Authorization successful/);

      await remote.until('the proxy to be established', () => (/Proxy established successfully/.test(remote.stderr) ? true : undefined));
      const tokens = stored('tokens.json');
      assert.ok(tokens && typeof tokens.access_token === 'string', 'mcp-remote stored its tokens');
      const { payload } = jwt(tokens.access_token as string);
      assert.equal(payload.aud, mcpUrl);
      assert.equal(payload.iss, as.issuer);
      assert.equal(payload.client_id, stored('client_info.json')?.client_id);
    }));

  it('initialize and tools/list answer through the proxy', () =>
    step(async () => {
      const init = await remote.request(1, 'initialize', {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'mcp-remote-test', version: '1.0.0' },
      });
      assert.equal((init.serverInfo as { name: string }).name, 'notes-example');
      remote.send({ method: 'notifications/initialized' });
      const { tools } = (await remote.request(2, 'tools/list')) as { tools: Array<{ name: string }> };
      // consent as preselected: the dangerous notes:delete was not granted, so delete_note is hidden
      assert.deepEqual(tools.map((tool) => tool.name).sort(), ['add_note', 'list_notes', 'read_note']);
    }));

  it('tools/call add_note then list_notes answer through the proxy', () =>
    step(async () => {
      noteText = `via mcp-remote ${randomUUID()}`;
      const added = await remote.request(3, 'tools/call', { name: 'add_note', arguments: { text: noteText } });
      assert.ok(!(added as ToolResult).isError, textOf(added));
      const { id } = JSON.parse(textOf(added)) as { id: string };
      const listed = await remote.request(4, 'tools/call', { name: 'list_notes', arguments: {} });
      assert.deepEqual(
        (JSON.parse(textOf(listed)) as { notes: Array<{ id: string; text: string }> }).notes.map((n) => [n.id, n.text]),
        [[id, noteText]],
      );
    }));
});
