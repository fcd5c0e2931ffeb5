/**
 * bench/flows: whole authorization code flows per second — authorize, sign in, consent, code
 * exchange, refresh — and the cost of a device polling at the token endpoint, mcp-authz next to
 * a bare oidc-provider with its dev interactions (bench/bare-oidc-provider.ts), in the same run.
 *
 *   npm run bench -- flows          (ROUNDS=4 SECONDS=5 WORKERS=4)
 *
 * Both servers on core 0, this driver on core 1. A flow: PKCE (S256), `resource`, scope
 * `notes:read`, `prompt=consent`; a fresh cookie jar each time, so every flow signs in and
 * consents; the code redeemed and the refresh token used once. The driver follows redirects
 * and fills the first form of each page (username or login, password; consent as preselected),
 * like a person who clicks through. Polling: autocannon's closed loop of device code grant
 * requests for a code nobody approves (answers `authorization_pending` or `slow_down`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../adapters/index.js';
import { createAccountService } from '../src/accounts/service.js';
import { alternate, cpuSeconds, freePort, median, pairedRatio, startServer, summary, writeResult, type Server } from './harness.js';
import { BENCH_PASSWORD, BENCH_RESOURCE, BENCH_USER, DEVICE_CLIENT, FLOW_CLIENT, FLOW_REDIRECT, benchConfig } from './fixtures.js';

const ROUNDS = Number(process.env.ROUNDS ?? 4);
const SECONDS = Number(process.env.SECONDS ?? 5);
const WORKERS = Number(process.env.WORKERS ?? 4);

/** One person's browser: cookies kept per host, redirects followed by hand. */
export class Jar {
  readonly #cookies = new Map<string, string>();
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  store(res: Response): void {
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair!.indexOf('=');
      this.#cookies.set(pair!.slice(0, at).trim(), pair!.slice(at + 1).trim());
    }
  }
}

/** The first POST form of a page: its action and fields. */
function firstForm(html: string, base: string): { action: string; fields: URLSearchParams } | undefined {
  const form = /<form[^>]*method="post"[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>|<form[^>]*action="([^"]*)"[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return undefined;
  const action = (form[1] ?? form[3])!.replace(/&amp;/g, '&');
  const body = form[2] ?? form[4] ?? '';
  const fields = new URLSearchParams();
  for (const input of body.matchAll(/<input([^>]*)>/gi)) {
    const attrs = input[1]!;
    const name = /name="([^"]*)"/.exec(attrs)?.[1];
    if (!name) continue;
    const type = /type="([^"]*)"/.exec(attrs)?.[1] ?? 'text';
    if ((type === 'checkbox' || type === 'radio') && !/\schecked/.test(attrs)) continue;
    fields.append(name, (/value="([^"]*)"/.exec(attrs)?.[1] ?? '').replace(/&amp;/g, '&'));
  }
  return { action: new URL(action, base).href, fields };
}

/** One whole flow against `issuer` in `jar`'s browser; resolves when the refresh succeeded. */
export async function flow(issuer: string, jar = new Jar()): Promise<void> {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(8).toString('base64url');
  const auth = new URL(`${issuer}/auth`);
  for (const [k, v] of Object.entries({
    response_type: 'code',
    client_id: FLOW_CLIENT,
    redirect_uri: FLOW_REDIRECT,
    scope: 'notes:read',
    resource: BENCH_RESOURCE,
    prompt: 'consent',
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }))
    auth.searchParams.set(k, v);
  let url = auth.href;
  let method = 'GET';
  let body: URLSearchParams | undefined;
  let code: string | undefined;
  for (let step = 0; step < 12 && !code; step++) {
    const res = await fetch(url, { method, body, redirect: 'manual', headers: { cookie: jar.header(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) } });
    jar.store(res);
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      url = new URL(res.headers.get('location')!, url).href;
      method = 'GET';
      body = undefined;
      if (url.startsWith(FLOW_REDIRECT)) code = new URL(url).searchParams.get('code') ?? undefined;
      continue;
    }
    const form = firstForm(await res.text(), url);
    if (!form) throw new Error(`no form at ${url} (${res.status})`);
    for (const field of ['username', 'login']) if (form.fields.has(field)) form.fields.set(field, BENCH_USER);
    if (form.fields.has('password')) form.fields.set('password', BENCH_PASSWORD);
    url = form.action;
    method = 'POST';
    body = form.fields;
  }
  if (!code) throw new Error('the flow did not end at the redirect URI');
  const token = async (params: Record<string, string>) => {
    const res = await fetch(`${issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: FLOW_CLIENT, ...params }) });
    const answer = (await res.json()) as { refresh_token?: string; error?: string };
    if (res.status !== 200) throw new Error(`token endpoint: ${res.status} ${answer.error}`);
    return answer;
  };
  const tokens = await token({ grant_type: 'authorization_code', code, redirect_uri: FLOW_REDIRECT, code_verifier: verifier, resource: BENCH_RESOURCE });
  await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
}

/**
 * Flows per second with WORKERS concurrent people, for SECONDS, and the server's CPU per flow:
 * each flow in a new browser (signing in every time), or each person in one browser (signed in
 * once, before the round: authorize, consent, code exchange and refresh).
 */
async function flowRound(server: Server, seconds: number, signedIn = false) {
  const jars = Array.from({ length: WORKERS }, () => new Jar());
  // signed in already: each person signs in (one flow, not counted) before the round starts
  if (signedIn) await Promise.all(jars.map((jar) => flow(server.url, jar)));
  const before = cpuSeconds(server.pid);
  const started = performance.now();
  let flows = 0;
  let errors = 0;
  await Promise.all(
    jars.map(async (jar) => {
      while (performance.now() - started < seconds * 1000) {
        try {
          await flow(server.url, signedIn ? jar : new Jar());
          flows++;
        } catch (err) {
          errors++;
          if (errors === 1) console.error(`${server.label}: ${(err as Error).message}`);
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { flowsPerSecond: flows / elapsed, cpuMsPerFlow: ((cpuSeconds(server.pid) - before) * 1000) / Math.max(1, flows), errors };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-bench-flows-'));
  const [barePort, ourPort] = [await freePort(), await freePort()];
  const configFile = join(dir, 'mcp-authz.json');
  writeFileSync(configFile, JSON.stringify({ ...benchConfig(), rateLimits: { tokenPerClient: { max: 1_000_000, window: 60 }, signInPerSource: { max: 1_000_000, window: 60 } } }));
  const dataDir = join(dir, 'ours');
  const store = await openStore({ dataDir, redisKeyPrefix: 'x:' });
  await createAccountService(store.accounts).create(BENCH_USER, BENCH_PASSWORD);
  await store.close();
  const bare = await startServer('oidc-provider (dev interactions)', [process.execPath, 'dist/bench/bare-oidc-provider.js', String(barePort), 'sqlite', join(dir, 'bare')], `http://127.0.0.1:${barePort}`);
  const ours = await startServer('mcp-authz', [process.execPath, 'dist/src/main.js', '--config', configFile, 'serve'], `http://127.0.0.1:${ourPort}`, {
    env: { PORT: String(ourPort), ADMIN_PORT: '0', HOST: '127.0.0.1', ISSUER: `http://127.0.0.1:${ourPort}`, DATA_DIR: dataDir },
    stdout: openSync(join(dir, 'mcp-authz.log'), 'a'),
  });
  try {
    console.error(`flows: ${ROUNDS} alternating rounds of ${SECONDS} s, ${WORKERS} people at a time`);
    type Rounds = Record<'bare' | 'ours', Awaited<ReturnType<typeof flowRound>>[]>;
    const rounds: Rounds = { bare: [], ours: [] };
    const signedInRounds: Rounds = { bare: [], ours: [] };
    await flowRound(bare, 2);
    await flowRound(ours, 2);
    for (let r = 0; r < ROUNDS; r++) {
      for (const which of r % 2 ? (['ours', 'bare'] as const) : (['bare', 'ours'] as const)) {
        rounds[which].push(await flowRound(which === 'bare' ? bare : ours, SECONDS));
        signedInRounds[which].push(await flowRound(which === 'bare' ? bare : ours, SECONDS, true));
      }
    }
    // polling: a device code nobody approves, polled as fast as the connections allow
    const deviceCode = async (server: Server) => {
      const res = await fetch(`${server.url}/device/auth`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: DEVICE_CLIENT, scope: 'notes:read', resource: BENCH_RESOURCE }) });
      return ((await res.json()) as { device_code: string }).device_code;
    };
    const poll = async (server: Server) => ({
      server,
      load: {
        url: `${server.url}/token`,
        method: 'POST' as const,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: DEVICE_CLIENT, device_code: await deviceCode(server) }).toString(),
        connections: 10,
        seconds: SECONDS,
      },
    });
    const [barePolls, ourPolls] = await alternate([await poll(bare), await poll(ours)], ROUNDS, 2);
    const flowSummary = (xs: typeof rounds.bare) => ({
      flowsPerSecond: Number(median(xs.map((x) => x.flowsPerSecond)).toFixed(1)),
      cpuMsPerFlow: Number(median(xs.map((x) => x.cpuMsPerFlow)).toFixed(2)),
      errors: xs.reduce((n, x) => n + x.errors, 0),
    });
    const result = {
      method: { rounds: ROUNDS, seconds: SECONDS, people: WORKERS, flow: 'authorize, sign in, consent (prompt=consent), code exchange, refresh; a fresh cookie jar each' },
      flows: {
        bare: flowSummary(rounds.bare),
        mcpAuthz: flowSummary(rounds.ours),
        ratio: Number(median(rounds.ours.map((x, i) => x.flowsPerSecond / rounds.bare[i]!.flowsPerSecond)).toFixed(3)),
      },
      signedInFlows: {
        bare: flowSummary(signedInRounds.bare),
        mcpAuthz: flowSummary(signedInRounds.ours),
        ratio: Number(median(signedInRounds.ours.map((x, i) => x.flowsPerSecond / signedInRounds.bare[i]!.flowsPerSecond)).toFixed(3)),
      },
      devicePolling: { bare: summary(barePolls!), mcpAuthz: summary(ourPolls!), ratio: Number(pairedRatio(barePolls!, ourPolls!).toFixed(3)) },
    };
    const path = writeResult('flows', result);
    console.log(
      [
        `authorization code flows per second (${WORKERS} people at a time), signing in each time`,
        `  bare oidc-provider, dev interactions  ${result.flows.bare.flowsPerSecond}/s  ${result.flows.bare.cpuMsPerFlow} ms CPU per flow (no password hash)`,
        `  mcp-authz                             ${result.flows.mcpAuthz.flowsPerSecond}/s  ${result.flows.mcpAuthz.cpuMsPerFlow} ms CPU per flow (scrypt N=2^17)   ratio ${result.flows.ratio}`,
        `the same, signed in already (authorize, consent, code exchange, refresh)`,
        `  bare oidc-provider, dev interactions  ${result.signedInFlows.bare.flowsPerSecond}/s  ${result.signedInFlows.bare.cpuMsPerFlow} ms CPU per flow`,
        `  mcp-authz                             ${result.signedInFlows.mcpAuthz.flowsPerSecond}/s  ${result.signedInFlows.mcpAuthz.cpuMsPerFlow} ms CPU per flow   ratio ${result.signedInFlows.ratio}`,
        `device polls per second (authorization_pending / slow_down)`,
        `  bare oidc-provider  ${result.devicePolling.bare.requestsPerSecond}/s  ${result.devicePolling.bare.cpuMicrosPerRequest} µs CPU per poll`,
        `  mcp-authz           ${result.devicePolling.mcpAuthz.requestsPerSecond}/s  ${result.devicePolling.mcpAuthz.cpuMicrosPerRequest} µs CPU per poll   ratio ${result.devicePolling.ratio}`,
        `  ${path}`,
      ].join('\n'),
    );
  } finally {
    await Promise.all([bare.stop(), ours.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

// run as a benchmark, not when imported (by a profiling script)
if (process.argv[1]?.endsWith('flows.js')) await main();
