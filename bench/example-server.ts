/**
 * bench/example-server: requests per second of the notes example MCP server with the
 * verifier in front of it and without it, same process, same machine.
 *
 *   npm run bench:example       (builds first; prints a table and writes bench/results/example-server.json)
 *   WORKERS=16 ROUNDS=3 ROUND_MS=3000 npm run bench:example
 *
 * Method: a real authorization server (SQLite) and two instances of the example app on
 * 127.0.0.1: `auth: true` (verifier, revocation feed on) and `auth: false` (the same MCP
 * server, no verifier). One client-credentials token (notes:read notes:write) for the first.
 * Each instance holds 10 notes for its caller. For each instance, a closed loop of WORKERS
 * concurrent workers (keep-alive connections of the global fetch) sends `tools/call
 * list_notes` JSON-RPC POSTs for ROUND_MS; the instances alternate over ROUNDS rounds, and we
 * report the median rate of each and their ratio. Everything (load generator included) runs
 * in this one Node process, so the numbers compare the two servers rather than measure
 * either one's ceiling.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { createNotesApp, type NotesApp } from '../examples/notes-mcp-server/server.js';
import { startServer } from '../test/helpers/server.js';
import { exampleNotesResource } from '../test/helpers/fixtures.js';

const WORKERS = Number(process.env.WORKERS ?? 16);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const ROUND_MS = Number(process.env.ROUND_MS ?? 3000);
const WARMUP_MS = Number(process.env.WARMUP_MS ?? 1000);
const SECRET = 'a-bench-secret-that-is-long-enough';

interface Instance {
  label: string;
  url: string;
  token?: string;
  notes: NotesApp;
  http: Server;
}

interface RoundResult {
  rps: number;
  ok: number;
  errors: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function listen(): Promise<{ http: Server; url: string }> {
  const http = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { http, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp` };
}

function rpc(instance: Instance, method: string, params: Record<string, unknown>): Promise<Response> {
  return fetch(instance.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(instance.token ? { authorization: `Bearer ${instance.token}` } : {}),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
}

/** A closed loop of WORKERS workers calling list_notes for `ms`. */
async function round(instance: Instance, ms: number): Promise<RoundResult> {
  let ok = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + ms;
  const worker = async () => {
    while (performance.now() < deadline) {
      const res = await rpc(instance, 'tools/call', { name: 'list_notes', arguments: {} });
      const body = await res.text();
      if (res.status === 200 && body.includes('"result"')) ok++;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { rps: ok / seconds, ok, errors };
}

async function main() {
  const withAuth = await listen();
  const withoutAuth = await listen();
  const as = await startServer({
    store: 'sqlite',
    config: {
      logLevel: 'silent',
      resources: [
        exampleNotesResource(withAuth.url),
      ],
      clients: [{ client_id: 'bench', client_secret: SECRET, grant_types: ['client_credentials'], resources: [withAuth.url] }],
    },
  });
  const instances: Instance[] = [];
  try {
    const tokenRes = await fetch(as.url('/token'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`bench:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: withAuth.url, scope: 'notes:read notes:write' }),
    });
    if (tokenRes.status !== 200) throw new Error(`token request failed: ${tokenRes.status} ${await tokenRes.text()}`);
    const token = ((await tokenRes.json()) as { access_token: string }).access_token;

    const verified = createNotesApp({ issuer: as.issuer, resource: withAuth.url, revocation: true });
    withAuth.http.on('request', verified.app);
    instances.push({ label: 'with verifier (revocation on)', url: withAuth.url, token, notes: verified, http: withAuth.http });
    const open = createNotesApp({ issuer: as.issuer, resource: withoutAuth.url, auth: false });
    withoutAuth.http.on('request', open.app);
    instances.push({ label: 'without verifier', url: withoutAuth.url, notes: open, http: withoutAuth.http });

    await verified.verifier!.ready();
    for (const instance of instances) {
      for (let i = 0; i < 10; i++) {
        const res = await rpc(instance, 'tools/call', { name: 'add_note', arguments: { text: `note ${i}: ${'lorem ipsum '.repeat(4)}` } });
        if (res.status !== 200) throw new Error(`${instance.label}: add_note answered ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      }
      await round(instance, WARMUP_MS);
    }

    const rates = new Map<Instance, number[]>(instances.map((instance) => [instance, []]));
    let errors = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? instances : [...instances].reverse();
      for (const instance of order) {
        const result = await round(instance, ROUND_MS);
        rates.get(instance)!.push(result.rps);
        errors += result.errors;
        if (process.env.VERBOSE) console.error(`round ${r + 1} ${instance.label}: ${result.rps.toFixed(0)}/s (${result.errors} errors)`);
      }
    }

    const [authed, bare] = instances as [Instance, Instance];
    const withRps = median(rates.get(authed)!);
    const withoutRps = median(rates.get(bare)!);
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: availableParallelism(),
      workers: WORKERS,
      rounds: ROUNDS,
      roundMs: ROUND_MS,
      request: 'tools/call list_notes (10 notes), stateless Streamable HTTP, JSON response',
      withVerifier: Math.round(withRps),
      withoutVerifier: Math.round(withoutRps),
      ratio: Number((withRps / withoutRps).toFixed(3)),
      roundsWithVerifier: rates.get(authed)!.map(Math.round),
      roundsWithoutVerifier: rates.get(bare)!.map(Math.round),
      errors,
    };
    console.log(
      [
        `notes example MCP server, requests per second (median of ${ROUNDS} × ${ROUND_MS} ms, ${WORKERS} workers, one process, Node ${process.version})`,
        `  without verifier                ${String(result.withoutVerifier).padStart(6)}`,
        `  with verifier, revocation on    ${String(result.withVerifier).padStart(6)}`,
        `  ratio                           ${result.ratio.toFixed(3).padStart(6)}`,
        ...(errors ? [`  errors                          ${String(errors).padStart(6)}`] : []),
      ].join('\n'),
    );
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/example-server.json', `${JSON.stringify(result, null, 2)}\n`);
    if (errors) process.exitCode = 1;
  } finally {
    for (const instance of instances) await instance.notes.close();
    for (const { http } of [withAuth, withoutAuth]) {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    }
    await as.stop();
  }
}

await main();
