/**
 * A rolling restart, as Kubernetes does one: two `mcp-authz serve` replicas on one Redis behind
 * a balancer that skips replicas whose /readyz fails and retries a connection that was refused
 * (test/helpers/balancer.ts, `deployment: true`). While clients keep asking for and introspecting
 * tokens, each replica in turn gets SIGTERM — with a request of its own half sent at that moment,
 * finished only once the replica is past its drain delay, not ready and refusing new connections —
 * and is started again. The replicas drain for a second (`SHUTDOWN_DRAIN_DELAY`, what a preStop
 * sleep does in Kubernetes) so the balancer, polling readiness, stops sending them connections
 * before their listener closes; without it, a connection accepted by the kernel but not yet by
 * the server when the listener closes is reset. No request is lost: every one is answered 200, the request in flight
 * finishes, each replica exits 0 after logging `shutdown.done`, every token issued is in the
 * audit trail, and a verifier following the revocation feed through the balancer moves to the
 * other replica when told to reconnect, without a problem to report and still seeing revocations.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startReplicaSet, type ReplicaSet } from '../helpers/replicas.js';
import { NOTES, SECRET } from '../helpers/fixtures.js';
import { createVerifier, type Verifier } from '../../src/verifier/index.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id: string) => `Basic ${Buffer.from(`${id}:${SECRET}`).toString('base64')}`;
const TOKEN_BODY = new URLSearchParams({ grant_type: 'client_credentials', scope: 'notes:read', resource: NOTES }).toString();

/** A token request to `origin` whose body is held back after its first half until `finish()`. */
function halfSentTokenRequest(origin: string) {
  const url = new URL('/token', origin);
  let finish!: () => void;
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: { ...FORM, authorization: basic('nightly-report'), 'content-length': Buffer.byteLength(TOKEN_BODY), connection: 'keep-alive' },
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    const half = Math.floor(TOKEN_BODY.length / 2);
    req.write(TOKEN_BODY.slice(0, half));
    req.flushHeaders();
    finish = () => req.end(TOKEN_BODY.slice(half));
  });
  return { response, finish: () => finish() };
}

/** `token.issued` records in the audit files of a replica's data directory. */
function issuedInAudit(dataDir: string): number {
  const dir = join(dataDir, 'audit');
  if (!existsSync(dir)) return 0;
  let count = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.jsonl'))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) if (line.includes('"event":"token.issued"')) count++;
  }
  return count;
}

describe('rolling restart of two replicas under load', { timeout: 120_000 }, () => {
  let set: ReplicaSet;
  let verifier: Verifier;
  const verifierProblems: string[] = [];

  before(async () => {
    set = await startReplicaSet({ deployment: true, config: { rateLimits: { tokenPerClient: { max: 1_000_000, window: 60 } } }, env: { LOG_LEVEL: 'info', SHUTDOWN_DRAIN_DELAY: '1' } });
    verifier = createVerifier({ issuer: set.issuer, resource: NOTES, revocation: { onError: (e) => verifierProblems.push(e.message) } });
    await verifier.ready();
  });
  after(async () => {
    await verifier?.close();
    await set?.stop();
  });

  it('restarts each replica in turn while clients keep asking: every request answered, the one in flight finished, nothing lost', async () => {
    let running = true;
    let issued = 0;
    let introspected = 0;
    const failures: string[] = [];
    const worker = async () => {
      while (running) {
        try {
          const res = await fetch(set.url('/token'), { method: 'POST', headers: { ...FORM, authorization: basic('nightly-report') }, body: TOKEN_BODY });
          const body = await res.text();
          if (res.status !== 200) {
            failures.push(`token ${res.status} ${body}`);
            continue;
          }
          issued++;
          const token = (JSON.parse(body) as { access_token: string }).access_token;
          const check = await fetch(set.url('/token/introspection'), { method: 'POST', headers: { ...FORM, authorization: basic('notes-server') }, body: new URLSearchParams({ token }) });
          const answer = (await check.json()) as { active?: boolean };
          if (check.status !== 200 || answer.active !== true) failures.push(`introspection ${check.status} ${JSON.stringify(answer)}`);
          else introspected++;
        } catch (err) {
          failures.push(`request failed: ${(err as Error).message}`);
        }
      }
    };
    const workers = Array.from({ length: 6 }, () => worker());
    await sleep(500);

    let inFlight = 0;
    for (const replica of set.replicas) {
      const half = halfSentTokenRequest(replica.origin);
      // the replica has the request's headers before the signal
      await sleep(100);
      const exited = replica.stop('SIGTERM');
      // past the drain delay: not ready, the listener closed, the request in flight still held open
      await sleep(1500);
      const ready = await fetch(replica.adminUrl('/readyz'));
      assert.equal(ready.status, 503);
      assert.equal(((await ready.json()) as { draining: boolean }).draining, true);
      const refused = await fetch(`${replica.origin}/healthz`).then(
        (r) => `answered ${r.status}`,
        (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message,
      );
      assert.equal(refused, 'ECONNREFUSED', 'new connections are refused');
      half.finish();
      const answer = await half.response;
      assert.equal(answer.status, 200, `the request in flight at SIGTERM was answered: ${answer.body}`);
      assert.ok(JSON.parse(answer.body).access_token);
      inFlight++;
      const exit = await exited;
      assert.deepEqual(exit, { code: 0, signal: null }, 'a clean exit');
      const log = replica.output().stdout;
      assert.match(log, /"event":"shutdown\.done"/);
      // the other replica carries the load alone for a moment, then this one comes back
      await sleep(300);
      await replica.start();
      for (let i = 0; i < 100 && (await fetch(replica.adminUrl('/readyz')).then((r) => r.status, () => 0)) !== 200; i++) await sleep(50);
      await sleep(500);
    }
    running = false;
    await Promise.all(workers);

    assert.deepEqual(failures, [], 'no request failed');
    assert.ok(issued >= 50, `enough load to mean something (${issued} tokens)`);
    assert.equal(introspected, issued);
    const retried = set.balancer.served.filter((s) => s.tried?.length);
    // every replica answered after its restart
    const lastStarts = set.balancer.served.slice(-50).map((s) => s.backend);
    assert.ok(lastStarts.includes(0) && lastStarts.includes(1), 'both replicas serve again');
    // the audit trail holds every token issued, across both replicas and their restarts
    const audited = set.replicas.reduce((sum, r) => sum + issuedInAudit(r.dataDir), 0);
    assert.equal(audited, issued + inFlight, `${retried.length} requests were retried on the other replica`);
  });

  it('the verifier following the feed through the balancer moved over when told to reconnect, and still sees revocations', async () => {
    const status = verifier.revocationStatus();
    assert.ok(status && status.reconnects >= 1, 'it reconnected');
    assert.equal(status.fresh, true);
    assert.deepEqual(verifierProblems, [], 'an announced reconnection is not a problem');
    const issued = await fetch(set.url('/token'), { method: 'POST', headers: { ...FORM, authorization: basic('nightly-report') }, body: TOKEN_BODY });
    const token = ((await issued.json()) as { access_token: string }).access_token;
    await verifier.verifyAccessToken(token);
    const revoked = await fetch(set.url('/token/revocation'), { method: 'POST', headers: { ...FORM, authorization: basic('nightly-report') }, body: new URLSearchParams({ token }) });
    assert.equal(revoked.status, 200);
    let code = '';
    for (let i = 0; i < 100 && code !== 'ERR_TOKEN_REVOKED'; i++) {
      code = await verifier.verifyAccessToken(token).then(
        () => '',
        (err: { code?: string }) => err.code ?? 'error',
      );
      if (code !== 'ERR_TOKEN_REVOKED') await sleep(20);
    }
    assert.equal(code, 'ERR_TOKEN_REVOKED');
  });
});
