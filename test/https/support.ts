/**
 * What the https tests share: a test CA and a `localhost` server certificate made with openssl in
 * a temporary directory, the authorization server on a real TLS listener or on plain HTTP behind a
 * small TLS-terminating reverse proxy (as an nginx would be), Chromium trusting that certificate,
 * and an authorization code flow a person drives in it.
 *
 * Chromium is told to trust the server certificate by its public key
 * (`--ignore-certificate-errors-spki-list`), with `ignoreHTTPSErrors: false`: any other certificate
 * is still refused, and the test CA never enters a system or browser store.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Browser, Page, Response } from 'playwright-core';
import { parseConfig } from '../../src/config/load.js';
import { createServer, type AuthServer } from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { createAccountService } from '../../src/accounts/service.js';
import { CHROMIUM_PATH, launchBrowser } from '../helpers/browser.js';
import { fixtureConfig, NOTES, PASSWORD } from '../helpers/fixtures.js';

/** A client registered with an https redirect URI, as a web MCP host would be. */
export const HTTPS_CLIENT = 'https-app';
export const HTTPS_CLIENT_NAME = 'Https App';
export const HTTPS_REDIRECT = 'https://app.example.com/callback';

/** Fails fast, by name, when a program the tests need is missing. */
export function requireTools(): void {
  const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (openssl.error || openssl.status !== 0) throw new Error('openssl not found: install openssl (the https tests make their CA with it)');
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install chromium (apt-get install chromium)`);
}

export interface Pki {
  dir: string;
  ca: string;
  key: string;
  cert: string;
  /** base64 SHA-256 of the server certificate's SubjectPublicKeyInfo (Chromium's SPKI pin) */
  spki: string;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (result.error || result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.error?.message ?? result.stderr}`);
}

/** A CA valid two days and a server certificate it issued for DNS:localhost and IP:127.0.0.1. */
export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-https-'));
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=mcp-authz https test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
    writeFileSync(
      join(dir, 'server.ext'),
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n',
    );
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'server.ext', '-out', 'server.pem'], dir);
    const cert = readFileSync(join(dir, 'server.pem'), 'utf8');
    const ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
    const x509 = new X509Certificate(cert);
    if (!x509.verify(new X509Certificate(ca).publicKey)) throw new Error('the server certificate is not signed by the test CA');
    const spki = createHash('sha256').update(x509.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
    return {
      dir,
      ca,
      key: readFileSync(join(dir, 'server.key'), 'utf8'),
      cert,
      spki,
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

type Listener = HttpServer | HttpsServer;

async function listen(server: Listener, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function close(server: Listener): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface RunningServer {
  issuer: string;
  server: AuthServer;
  logs: Record<string, unknown>[];
  /** the port the server itself listens on (plain HTTP behind the proxy, TLS when direct) */
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * The authorization server with the fixture configuration plus HTTPS_CLIENT, alice as its one
 * account, on `listener` (already listening) for `issuer`.
 */
async function serve(listener: Listener, port: number, issuer: string, trustProxy: boolean): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-https-data-'));
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const base = fixtureConfig();
  const config = parseConfig({
    ...base,
    clients: [
      ...(base.clients ?? []),
      { client_id: HTTPS_CLIENT, client_name: HTTPS_CLIENT_NAME, token_endpoint_auth_method: 'none', redirect_uris: [HTTPS_REDIRECT] },
    ],
    issuer,
    port,
    dataDir,
    trustProxy,
    logLevel: 'debug',
  });
  const server = await createServer(config, { logger: createLogger('debug', sink) });
  listener.on('request', server.app.callback());
  await createAccountService(server.store.accounts).create('alice', PASSWORD, []);
  return {
    issuer,
    server,
    logs,
    port,
    dataDir,
    async stop() {
      await close(listener);
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Set-up A: the server's own TLS listener, issuer https://localhost:<port>. */
export async function startDirectHttps(pki: Pki): Promise<RunningServer> {
  const listener = createHttpsServer({ key: pki.key, cert: pki.cert });
  const port = await listen(listener);
  return serve(listener, port, `https://localhost:${port}`, false);
}

/** Set-up B's back end: plain HTTP on 127.0.0.1, issuer the proxy's https origin. */
export async function startBehindProxy(issuer: string, trustProxy: boolean): Promise<RunningServer> {
  const listener = createHttpServer();
  const port = await listen(listener);
  return serve(listener, port, issuer, trustProxy);
}

export interface Proxy {
  port: number;
  origin: string;
  /** where requests go (the back end's port); may change between tests */
  target: number;
  /** every request the proxy forwarded: method, path, the back end's status */
  forwarded: { method: string; path: string; status: number }[];
  close(): Promise<void>;
}

/** The proxy's own address towards the back end: not the browser's (127.0.0.1), so the two can be told apart. */
export const PROXY_ADDRESS = '127.0.0.2';

/**
 * A TLS-terminating reverse proxy as nginx is usually configured (`proxy_set_header Host $host`,
 * `X-Forwarded-For $proxy_add_x_forwarded_for`, `X-Forwarded-Proto $scheme`, `X-Forwarded-Host $host`):
 * the request goes on over plain HTTP from PROXY_ADDRESS to 127.0.0.1:<target>, the answer comes back
 * unchanged. Like nginx's `$proxy_add_x_forwarded_for`, it appends the peer to any X-Forwarded-For
 * the client sent.
 */
export async function startProxy(pki: Pki): Promise<Proxy> {
  const proxy: Proxy = { port: 0, origin: '', target: 0, forwarded: [], close: async () => undefined };
  const server = createHttpsServer({ key: pki.key, cert: pki.cert }, (req, res) => {
    const headers = { ...req.headers };
    const prior = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = [prior, req.socket.remoteAddress].filter(Boolean).join(', ');
    headers['x-forwarded-proto'] = 'https';
    headers['x-forwarded-host'] = req.headers.host ?? `localhost:${proxy.port}`;
    const upstream = httpRequest({ host: '127.0.0.1', localAddress: PROXY_ADDRESS, port: proxy.target, method: req.method, path: req.url, headers }, (answer) => {
      proxy.forwarded.push({ method: req.method ?? '', path: req.url ?? '', status: answer.statusCode ?? 0 });
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
      answer.pipe(res);
    });
    upstream.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`bad gateway: ${err.message}`);
    });
    req.pipe(upstream);
  });
  proxy.port = await listen(server);
  proxy.origin = `https://localhost:${proxy.port}`;
  proxy.close = () => close(server);
  return proxy;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One https request from Node trusting only the test CA. */
export function fetchTls(pki: Pki, url: string, options: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Answer> {
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: options.method ?? (body ? 'POST' : 'GET'),
        ca: pki.ca,
        headers: { ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...options.headers },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Headless Chromium that accepts exactly the test server certificate (by its SPKI), nothing else. */
export async function launchTrustingBrowser(pki: Pki): Promise<Browser> {
  return launchBrowser([
    `--ignore-certificate-errors-spki-list=${pki.spki}`,
    // the client's redirect host fails at once instead of waiting for a resolver
    `--host-resolver-rules=MAP ${new URL(HTTPS_REDIRECT).hostname} ~NOTFOUND`,
  ]);
}

export interface SetCookie {
  name: string;
  value: string;
  /** attribute names lowercased → value ('' for flags) */
  attributes: Map<string, string>;
  url: string;
}

export function parseSetCookie(header: string, url: string): SetCookie {
  const [pair = '', ...rest] = header.split(';');
  const eq = pair.indexOf('=');
  const attributes = new Map<string, string>();
  for (const part of rest) {
    const i = part.indexOf('=');
    const name = (i === -1 ? part : part.slice(0, i)).trim().toLowerCase();
    if (name) attributes.set(name, i === -1 ? '' : part.slice(i + 1).trim());
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes, url };
}

/** Records every Set-Cookie and every HTML document the server (at `origin`) answers in `page`. */
export function watch(page: Page, origin: string): { cookies: SetCookie[]; documents: Response[]; settled(): Promise<void> } {
  const cookies: SetCookie[] = [];
  const documents: Response[] = [];
  const pending: Promise<void>[] = [];
  page.on('response', (response) => {
    if (!response.url().startsWith(origin)) return;
    pending.push(
      response.headersArray().then((headers) => {
        for (const { name, value } of headers) {
          // one header per cookie in CDP's list, or several joined by newlines
          if (name.toLowerCase() === 'set-cookie') for (const line of value.split('\n')) if (line.trim()) cookies.push(parseSetCookie(line, response.url()));
        }
      }),
    );
    if ((response.headers()['content-type'] ?? '').startsWith('text/html')) documents.push(response);
  });
  return { cookies, documents, settled: async () => void (await Promise.all(pending)) };
}

export interface Pkce {
  verifier: string;
  challenge: string;
  state: string;
}

export function pkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url'), state: randomBytes(12).toString('base64url') };
}

export function authorizationUrl(authorizationEndpoint: string, p: Pkce): string {
  const url = new URL(authorizationEndpoint);
  for (const [k, v] of Object.entries({
    client_id: HTTPS_CLIENT,
    response_type: 'code',
    redirect_uri: HTTPS_REDIRECT,
    scope: 'notes:read',
    resource: NOTES,
    code_challenge: p.challenge,
    code_challenge_method: 'S256',
    state: p.state,
  }))
    url.searchParams.set(k, v);
  return url.href;
}

export async function clickAndWait(page: Page, selector: string): Promise<Response | null> {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
  return response;
}

export async function heading(page: Page): Promise<string> {
  return ((await page.textContent('h1')) ?? '').trim();
}

/**
 * Clicks Allow and returns the redirect to the client. Nothing is at app.example.com (the browser
 * resolves the name to nothing), so the request is observed rather than routed (Playwright does not route a
 * request that follows a redirect); then the browser's own error page is awaited.
 */
export async function allowAndCaptureRedirect(page: Page): Promise<URL> {
  const redirected = page.waitForRequest((r) => r.url().startsWith(HTTPS_REDIRECT));
  await page.click('button:text("Allow")');
  const callback = new URL((await redirected).url());
  await page.waitForURL((u) => u.protocol === 'chrome-error:');
  return callback;
}

/** In `page`: the authorization request, alice signs in and allows; returns the redirect to HTTPS_REDIRECT. */
export async function signInAndConsent(page: Page, url: string): Promise<URL> {
  await page.goto(url);
  if ((await heading(page)) !== 'Sign in') throw new Error(`expected the sign-in page, got "${await heading(page)}" at ${page.url()}`);
  await page.fill('#username', 'alice');
  await page.fill('#password', PASSWORD);
  await clickAndWait(page, 'button:text("Sign in")');
  if ((await heading(page)) !== 'Allow access?') throw new Error(`expected the consent page, got "${await heading(page)}" at ${page.url()}`);
  return allowAndCaptureRedirect(page);
}
/** Where the browser and the client meet the server: its public https origin (= issuer). */
export interface Site {
  issuer: string;
  pki: Pki;
}
