/**
 * A newcomer's first start, as the README tells it: `mcp-authz serve` (what `npm start` runs)
 * with no config file and a clean DATA_DIR, in a process of its own. It offers the demo: the
 * example Notes MCP server alongside, a one-time set-up link on the console, and the MCP host
 * page. In headless Chromium a person follows the printed steps: creates the account from the
 * link, connects the host page, signs in, sees the dangerous scope unticked, allows, calls tools,
 * then revokes the app on the connected apps page and sees the MCP server refuse its token.
 * The link never reaches the JSON log or the audit trail, and works once. With a config file
 * the same server runs no demo.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { collectCspViolations, launchBrowser } from '../helpers/browser.js';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const EXAMPLE_CONFIG = fileURLToPath(new URL('../../../examples/notes-mcp-server/mcp-authz.yaml', import.meta.url));
const CONFIG_VARIABLES = ['PORT', 'HOST', 'ISSUER', 'REDIS_URL', 'LOG_LEVEL', 'TRUST_PROXY', 'MCP_AUTHZ_CONFIG', 'MCP_AUTHZ_DEMO', 'MCP_AUTHZ_DEMO_MCP_PORT'];
const PASSWORD = 'a demo password, long enough';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Started {
  child: ChildProcess;
  /** what it printed on stderr (the console) and stdout (the JSON log) so far */
  console(): string;
  log(): string;
}

/** `mcp-authz serve` as `npm start` runs it; resolves once it printed its start-up text. */
async function serve(env: Record<string, string>, args: string[] = [], cwd?: string): Promise<Started> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of CONFIG_VARIABLES) delete childEnv[name];
  const child = spawn(process.execPath, [MAIN, ...args, 'serve'], { env: { ...childEnv, ADMIN_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
  let err = '';
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const deadline = Date.now() + 20_000;
  while (!/See and revoke|accounts:|no accounts yet/.test(err)) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`serve printed no start-up text in 20 s: ${err}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, console: () => err, log: () => out };
}

async function stop(started: Started | undefined): Promise<void> {
  if (!started || started.child.exitCode !== null) return;
  started.child.kill('SIGTERM');
  await once(started.child, 'exit');
}

const text = async (page: Page) => ((await page.textContent('main')) ?? '').replace(/\s+/g, ' ');

describe('npm start on a fresh clone: the demo', () => {
  let dataDir: string;
  let port: number;
  let mcpPort: number;
  let demo: Started | undefined;
  let browser: Browser | undefined;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-demo-'));
    [port, mcpPort] = [await freePort(), await freePort()];
    // both started at once; whichever started is kept for after() even when the other failed
    const [served, launched] = await Promise.allSettled([serve({ DATA_DIR: dataDir, PORT: String(port), MCP_AUTHZ_DEMO_MCP_PORT: String(mcpPort) }), launchBrowser()]);
    if (served.status === 'fulfilled') demo = served.value;
    if (launched.status === 'fulfilled') browser = launched.value;
    for (const result of [served, launched]) if (result.status === 'rejected') throw result.reason;
  });
  after(async () => {
    await browser?.close();
    await stop(demo);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints what it offers and the next steps, with a one-time set-up link', () => {
    const printed = demo!.console();
    assert.match(printed, /DEMO: started without a config file/);
    assert.match(printed, new RegExp(`MCP server: +http://localhost:${mcpPort}/mcp +the example Notes server`));
    assert.match(printed, new RegExp(`http://localhost:${port}/setup\\?token=[A-Za-z0-9_-]{43}`));
    assert.match(printed, new RegExp(`In a browser: http://localhost:${port}/demo`));
    assert.match(printed, /npx @modelcontextprotocol\/inspector/);
  });

  it('in Chromium: set-up link → account → connect → sign in → consent → tool calls → revoke → refused', async () => {
    const link = /(http:\/\/localhost:\d+\/setup\?token=[A-Za-z0-9_-]+)/.exec(demo!.console())![1]!;
    const context = await browser!.newContext();
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    const violations = await collectCspViolations(page);
    try {
      // 1. the account
      await page.goto(link);
      assert.equal((await page.textContent('h1'))?.trim(), 'Create your account');
      assert.match((await page.textContent('.banner')) ?? '', /Demo: mcp-authz was started without a config file/);
      await page.fill('#username', 'ada');
      await page.fill('#password', PASSWORD);
      await page.fill('#confirm', `${PASSWORD}!`);
      await Promise.all([page.waitForNavigation(), page.click('button:text("Create the account")')]);
      assert.match(await text(page), /The two passwords differ/);
      await page.fill('#password', PASSWORD);
      await page.fill('#confirm', PASSWORD);
      await Promise.all([page.waitForURL(/\/demo\?notice=account-created$/), page.click('button:text("Create the account")')]);
      assert.match(await text(page), /Your account is ready/);

      // 2. the host page connects: sign-in and consent at the authorization server
      await Promise.all([page.waitForURL(/\/login$|\/interaction\//), page.click('button:text("Connect to the Notes MCP server")')]);
      await page.fill('#username', 'ada');
      await page.fill('#password', PASSWORD);
      await Promise.all([page.waitForNavigation(), page.click('button:text("Sign in")')]);
      assert.equal((await page.textContent('h1'))?.trim(), 'Allow access?');
      const consent = await text(page);
      assert.match(consent, /mcp-authz demo host/);
      assert.match(consent, new RegExp(`http://localhost:${mcpPort}/mcp`));
      const box = (scope: string) => page.locator(`label.scope:has(.scope-name:text-is("${scope}")) input[type="checkbox"]`);
      assert.equal(await box('notes:read').isChecked(), true);
      assert.equal(await box('notes:delete').isChecked(), false, 'the dangerous scope is never preselected');
      await Promise.all([page.waitForURL(new RegExp(`localhost:${port}/demo$`)), page.click('button:text("Allow")')]);

      // 3. connected: the token's scopes and the tools it may call
      const connected = await text(page);
      assert.match(connected, /Connected: the host has an access token/);
      assert.match(connected, /Allowed notes:read notes:write/);
      const tools = await page.locator('section.tool').evaluateAll((sections) => sections.map((s) => s.getAttribute('aria-label')));
      assert.deepEqual(tools.sort(), ['add_note', 'list_notes', 'read_note'], 'no delete_note: it was not allowed');

      // 4. tool calls
      await page.fill('#add_note-text', 'buy oat milk');
      await Promise.all([page.waitForNavigation(), page.click('button:text("Call add_note")')]);
      assert.match(await text(page), /add_note answered .*buy oat milk/);
      await Promise.all([page.waitForNavigation(), page.click('button:text("Call list_notes")')]);
      assert.match(await text(page), /list_notes answered .*"notes":\[\{"id":"[^"]+","text":"buy oat milk"/);

      // 5. revoked on the connected apps page: the MCP server refuses the token
      await Promise.all([page.waitForNavigation(), page.click('a:text("your connected apps")')]);
      assert.match(await text(page), /mcp-authz demo host/);
      await Promise.all([page.waitForNavigation(), page.click('button:text("Revoke mcp-authz demo host")')]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await page.goto(`http://localhost:${port}/demo`);
      assert.match(await text(page), /The MCP server refused the token: The access token has been revoked/);
      assert.ok(await page.locator('button:text("Connect to the Notes MCP server")').count(), 'back to not connected');
      assert.deepEqual(violations, [], 'no CSP violation on any page');

      // the link worked once
      await page.goto(link);
      assert.equal((await page.textContent('h1'))?.trim(), 'This set-up link does not work');
      assert.match(await text(page), /An account exists already/);
    } finally {
      await context.close();
    }
  });

  it('the set-up token is on the console only: not in the JSON log, not in the audit trail', () => {
    const token = /setup\?token=([A-Za-z0-9_-]+)/.exec(demo!.console())![1]!;
    assert.ok(demo!.log().length > 0);
    assert.ok(!demo!.log().includes(token), 'not in the log');
    const auditDir = join(dataDir, 'audit');
    const audit = readdirSync(auditDir).map((f) => readFileSync(join(auditDir, f), 'utf8')).join('');
    assert.match(audit, /"event":"admin.user_added"/);
    assert.match(audit, /"actor":"setup-link"/);
    assert.ok(!audit.includes(token), 'not in the audit trail');
  });

  it('bad input at the demo pages: a readable 4xx page or a redirect, never a 5xx or a stack', async () => {
    const base = `http://localhost:${port}`;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const cases: [string, RequestInit?][] = [
      ['/setup'],
      ['/setup?token=abc'],
      ['/setup?token=a&token=b'],
      ['/setup', { method: 'POST' }],
      ['/setup', { method: 'POST', headers: form, body: 'csrf=x&token=y' }],
      ['/setup', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }],
      ['/demo?notice=__proto__'],
      ['/demo?notice=constructor'],
      ['/demo/callback'],
      ['/demo/callback?code=x&state=y'],
      ['/demo/callback?state=a&state=b&error=access_denied'],
      ['/demo/call', { method: 'POST', headers: form, body: 'tool=x' }],
      ['/demo/connect', { method: 'POST' }],
      ['/demo/disconnect', { method: 'POST', headers: form, body: 'csrf=' }],
      ['/demo', { method: 'PUT' }],
      ['/demo/nothing-here'],
    ];
    for (const [path, init] of cases) {
      const res = await fetch(`${base}${path}`, { redirect: 'manual', ...init });
      const body = await res.text();
      assert.ok(res.status < 500, `${init?.method ?? 'GET'} ${path}: ${res.status}`);
      assert.doesNotMatch(body, /\bat .*\.js:\d+|object Object/, `${path}: no stack, no [object Object]`);
    }
    // a code the authorization server does not know, with this browser's own state: a message, not a 500
    const cookies: string[] = [];
    const page = await fetch(`${base}/demo`);
    cookies.push(...page.headers.getSetCookie().map((c) => c.split(';')[0]!));
    const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!;
    const connect = await fetch(`${base}/demo/connect`, { method: 'POST', redirect: 'manual', headers: { ...form, cookie: cookies.join('; ') }, body: `csrf=${encodeURIComponent(csrf)}` });
    assert.equal(connect.status, 303);
    const state = new URL(connect.headers.get('location')!).searchParams.get('state')!;
    const callback = await fetch(`${base}/demo/callback?code=not-a-code&state=${state}`, { redirect: 'manual', headers: { cookie: cookies.join('; ') } });
    assert.equal(callback.status, 303);
    const after = await (await fetch(`${base}/demo`, { headers: { cookie: cookies.join('; ') } })).text();
    assert.match(after, /did not give a token for that answer/);
  });

  it('with a config file the demo is off: no MCP server alongside, no link, no demo pages', async () => {
    await stop(demo);
    // the example's notes server client reads its secret from a file made once (examples/notes-mcp-server/README.md)
    const cwd = mkdtempSync(join(tmpdir(), 'mcp-authz-example-'));
    mkdirSync(join(cwd, 'examples/notes-mcp-server'), { recursive: true });
    writeFileSync(join(cwd, 'examples/notes-mcp-server/notes-server.secret'), `${randomBytes(24).toString('hex')}\n`);
    demo = await serve({ DATA_DIR: dataDir, PORT: String(port) }, ['--config', EXAMPLE_CONFIG], cwd);
    assert.doesNotMatch(demo.console(), /DEMO|setup\?token/);
    for (const path of ['/demo', '/setup']) assert.equal((await fetch(`http://localhost:${port}${path}`)).status, 404, path);
    await assert.rejects(fetch(`http://localhost:${mcpPort}/mcp`), 'nothing listens on the demo port');
  });
});
