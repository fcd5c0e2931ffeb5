/**
 * A whole flow across two replicas sharing one Redis (whatever the mode), for the Sentinel
 * and Cluster tests: a person signs in on replica A (login, consent, code, PKCE), replica B
 * introspects the access token and rotates the refresh token; a service token issued by A
 * and revoked there reaches B's revocation feed and B's introspection; a refresh token
 * revoked on B revokes its grant (every token of it, in the store: revokeByGrantId), which
 * A then refuses and the feed announces.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { SECRET } from '../helpers/fixtures.js';
import { serviceToken, userTokens } from '../helpers/flows.js';
import { SseClient, revocationFor } from '../helpers/sse.js';
import type { TestServer } from '../helpers/server.js';

const basic = (id: string) => `Basic ${Buffer.from(`${id}:${SECRET}`).toString('base64')}`;

async function post(t: TestServer, path: string, body: Record<string, string>, authorization?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (authorization) headers.authorization = authorization;
  const res = await fetch(t.url(path), { method: 'POST', headers, body: new URLSearchParams(body) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

/** POST /token with grant_type=refresh_token as the public client web-app. */
export function refresh(t: TestServer, refreshToken: string) {
  return post(t, '/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'web-app' });
}

/** RFC 7662 introspection by the MCP server the tokens are for. */
export async function isActive(t: TestServer, token: string): Promise<boolean> {
  const answer = await post(t, '/token/introspection', { token }, basic('notes-server'));
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.active === true;
}


/** B's revocation feed, once it says it is ready. */
export async function followFeed(t: TestServer): Promise<SseClient> {
  const sse = new SseClient(t.url('/revocations'));
  await sse.next((e) => e.event === 'ready');
  return sse;
}

/** Waits until every replica's /healthz says the store answers (at most `ms`). */
export async function healthy(replicas: TestServer[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (const t of replicas) {
    for (;;) {
      const status = await fetch(t.url('/healthz')).then((r) => r.status, () => 0);
      if (status === 200) break;
      if (Date.now() > deadline) throw new Error(`${t.issuer}/healthz still answers ${status}`);
      await sleep(100);
    }
  }
}

export interface FlowResult {
  /** a person's access and refresh tokens issued last, still active */
  accessToken: string;
  refreshToken: string;
}

/** The flow; `feed` follows B's revocation feed (opened earlier, it may have lived through a failover). */
export async function flowAcrossReplicas(a: TestServer, b: TestServer, feed: SseClient, feedWithinMs = 2000): Promise<FlowResult> {
  const { tokens } = await userTokens(a, 'web-app');
  assert.ok(tokens.refresh_token, 'web-app gets a refresh token');
  assert.equal(await isActive(b, tokens.access_token), true, 'B introspects what A issued');

  const refreshed = await refresh(b, tokens.refresh_token);
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  const rotated = refreshed.body.refresh_token as string;
  assert.ok(rotated && rotated !== tokens.refresh_token, 'B rotated the refresh token');
  assert.equal(await isActive(a, refreshed.body.access_token as string), true, 'A introspects what B issued');

  const service = await serviceToken(a);
  assert.equal(await isActive(b, service), true);
  const { jti } = decodeJwt(service);
  const revoked = await post(a, '/token/revocation', { token: service }, basic('nightly-report'));
  assert.equal(revoked.status, 200);
  await feed.next(revocationFor('token', jti), feedWithinMs);
  assert.equal(await isActive(b, service), false, 'B knows it is revoked');

  const grantId = decodeJwt(refreshed.body.access_token as string).grant_id;
  assert.equal(typeof grantId, 'string', 'the access token names its grant');
  const refreshRevoked = await post(b, '/token/revocation', { token: rotated, client_id: 'web-app' });
  assert.equal(refreshRevoked.status, 200);
  const refused = await refresh(a, rotated);
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.equal(refused.body.error, 'invalid_grant');
  await feed.next(revocationFor('grant', grantId), feedWithinMs);
  assert.equal(await isActive(a, refreshed.body.access_token as string), false, 'the grant went with its refresh token');
  assert.equal(await isActive(a, tokens.access_token), false);

  const { tokens: kept } = await userTokens(a, 'web-app');
  assert.ok(kept.refresh_token);
  return { accessToken: kept.access_token, refreshToken: kept.refresh_token };
}
