/**
 * An OIDC connection switched off (`enabled: false`) and the server restarted on the same
 * data: the refresh tokens of the people it signed in are refused (their grants revoked at
 * start, published on the revocation feed, `account.deprovisioned` in the audit log) while a
 * local account's refresh token on the same client still works, and the login page no longer
 * offers it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../../src/config/schema.js';
import { authorize, Browser } from '../helpers/browser-driver.js';
import { fixtureConfig, NOTES, PASSWORD, REDIRECT } from '../helpers/fixtures.js';
import { authorizationRequest } from '../helpers/flows.js';
import { client, publicClient } from '../helpers/rp.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { SseClient, revocationFor } from '../helpers/sse.js';
import { accountIdFor } from '../../src/connections/provision.js';
import { startUpstream, UPSTREAM_SECRET, type Upstream } from './oidc-upstream.js';
import { atUpstream, auditRecords, consentAndRedeem, toUpstream } from './oidc-flow.js';

const TIMEOUT = 120_000;

describe('a disabled OIDC connection, after a restart', { timeout: TIMEOUT }, () => {
  let upstream: Upstream;
  let t: TestServer | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-oidc-disabled-'));

  const config = (enabled: boolean): Partial<ConfigInput> => {
    const base = fixtureConfig();
    return {
      clients: [
        ...base.clients!,
        { client_id: 'web-refresh', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], application_type: 'native', grant_types: ['authorization_code', 'refresh_token'] },
      ],
      connections: [{ kind: 'oidc', id: 'corp', name: 'Corp SSO', issuer: upstream.issuer, clientId: 'mcp-authz', clientSecret: UPSTREAM_SECRET, enabled }],
    };
  };

  before(async () => {
    upstream = await startUpstream();
    upstream.people.set('ada', { preferred_username: 'ada', email: 'ada@corp.example', email_verified: true });
  });
  after(async () => {
    await t?.stop();
    await upstream?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const refresh = async (server: TestServer, token: string) => {
    try {
      return await client.refreshTokenGrant(await publicClient(server, 'web-refresh'), token, { resource: NOTES });
    } catch (err) {
      return err as Error & { error?: string };
    }
  };

  test('its people’s refresh tokens are refused (revoked on the feed), a local account’s still works; it is not offered any more', async () => {
    t = await startServer({ store: 'sqlite', dataDir, config: config(true) });
    await upstream.register([t.url('/connections/corp/callback')]);

    const browser = new Browser();
    const flow = await toUpstream(browser, t, 'corp', 'notes:read', 'web-refresh');
    const upstreamPerson = await consentAndRedeem(browser, await atUpstream(browser, flow.page, 'ada'), flow.request);
    const local = await authorizationRequest(t, 'web-refresh', { scope: 'notes:read', resource: NOTES });
    const localPerson = await client.authorizationCodeGrant(local.config, await authorize(new Browser(), local.url, REDIRECT, PASSWORD), { pkceCodeVerifier: local.verifier, expectedState: local.state }, { resource: NOTES });
    assert.ok(upstreamPerson.refresh_token && localPerson.refresh_token);
    const stillFine = await refresh(t, upstreamPerson.refresh_token);
    assert.ok(!(stillFine instanceof Error), 'while enabled, the refresh works');
    const id = accountIdFor('corp', 'ada');
    const grants = await t.server.store.grants.list({ accountId: id });
    assert.equal(grants.length, 1);
    await t.stop();

    t = await startServer({ store: 'sqlite', dataDir, config: config(false) });
    // a verifier following the feed (its retained backlog, from the start) is told of the grant and of every token of the person
    const feed = new SseClient(t.url('/revocations'));
    try {
      await feed.next(revocationFor('grant', grants[0]!.grantId));
      await feed.next(revocationFor('subject', id));
    } finally {
      await feed.close();
    }
    const refused = await refresh(t, stillFine.refresh_token!);
    assert.ok(refused instanceof Error, 'refused once the connection is disabled');
    assert.equal(refused.error, 'invalid_grant');
    assert.ok(!((await refresh(t, localPerson.refresh_token)) instanceof Error), "a local account's refresh on the same client still works");

    await t.server.audit.flush();
    const audit = auditRecords(t);
    assert.ok(audit.some((r) => r.event === 'account.deprovisioned' && r.details?.accountId === id && r.details?.connection === 'corp' && r.details?.reason === 'connection_disabled'));
    const disabled = audit.filter((r) => r.event === 'connection.disabled');
    assert.equal(disabled.length, 1, 'one record for the connection');
    assert.deepEqual([disabled[0]!.actor, disabled[0]!.details?.connection, disabled[0]!.details?.accounts], ['server', 'corp', 1]);
    assert.ok(Number(disabled[0]!.details?.grantsRevoked) >= 1);

    const request = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES });
    const person = new Browser();
    const login = await person.go(request.url);
    assert.equal(login.status, 200);
    assert.doesNotMatch(login.html, /data-connection="corp"/);
    const start = await person.go(`${login.url}/connection/corp`);
    assert.equal(start.status, 404);
  });
});
