/**
 * An OIDC connection whose upstream names its claims its own way (`claims.username`, `email`,
 * `name`, `groups` set): the account gets the username, address, display name and roles from
 * those claims — a dotted path (`realm_access.roles`, as Keycloak sends) and a URL-like name
 * (`https://corp.example/groups`, as Auth0 sends) included — and the standard claims, present
 * too with other values, are not read. Against the real test upstream (./oidc-upstream.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../helpers/browser-driver.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { accountIdFor } from '../../src/connections/provision.js';
import { atUpstream, consentAndRedeem, toUpstream } from './oidc-flow.js';
import { startUpstream, UPSTREAM_SECRET, type Upstream } from './oidc-upstream.js';

describe('an OIDC connection reads the claims it is told to', { timeout: 60_000 }, () => {
  let upstream: Upstream;
  let t: TestServer;

  const connection = (id: string, groups: string) => ({
    kind: 'oidc' as const,
    id,
    name: `Corp (${id})`,
    issuer: upstream.issuer,
    clientId: 'mcp-authz',
    clientSecret: UPSTREAM_SECRET,
    scopes: ['profile', 'email', 'groups', 'corp'],
    claims: { username: 'upn', email: 'mail', name: 'display', groups },
    roles: { groups: { 'ledger-readers': ['finance'] } },
  });

  before(async () => {
    upstream = await startUpstream();
    for (const sub of ['mo', 'max']) {
      upstream.people.set(sub, {
        upn: `${sub}.claims`,
        mail: `${sub}@corp.example`,
        display: `${sub} Claims`,
        realm_access: { roles: ['ledger-readers'] },
        'https://corp.example/groups': ['ledger-readers'],
        // the standard claims, which these connections do not read
        preferred_username: `wrong-${sub}`,
        email: `wrong-${sub}@corp.example`,
        email_verified: true,
        name: 'Wrong Name',
        groups: ['staff'],
      });
    }
    t = await startServer({ store: 'sqlite', users: {}, config: { connections: [connection('keycloak', 'realm_access.roles'), connection('auth0', 'https://corp.example/groups')] } });
    await upstream.register([t.url('/connections/keycloak/callback'), t.url('/connections/auth0/callback')]);
  });
  after(async () => {
    await t?.stop();
    await upstream?.stop();
  });

  for (const [id, sub] of [['keycloak', 'mo'], ['auth0', 'max']] as const) {
    test(`${id}: username, e-mail, name and roles come from the configured claims, not the standard ones`, async () => {
      const browser = new Browser();
      const { request, page } = await toUpstream(browser, t, id);
      await consentAndRedeem(browser, await atUpstream(browser, page, sub), request);
      const account = await t.server.store.accounts.findById(accountIdFor(id, sub));
      assert.ok(account, 'provisioned');
      assert.deepEqual(
        { username: account.username, email: account.email, displayName: account.displayName, roles: account.roles },
        { username: `${sub}.claims`, email: `${sub}@corp.example`, displayName: `${sub} Claims`, roles: ['finance'] },
      );
    });
  }
});
