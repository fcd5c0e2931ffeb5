/**
 * The shared part of every connection, on a real SQLite store: just-in-time provisioning and
 * its link rules, roles from groups, home-realm discovery, and the single-use records that
 * carry a redirect-based sign-in across the upstream. The protocol drivers have their own
 * tests against real upstreams (oidc, saml, ldap in this folder).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../adapters/index.js';
import type { Store } from '../../adapters/contract.js';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { ConnectionConfig } from '../../src/config/sign-in.js';
import { createAccountService } from '../../src/accounts/service.js';
import { upstreamIdentitySchema, type UpstreamIdentityInput } from '../../src/connections/identity.js';
import { accountIdFor, provisionAccount, usernameFor } from '../../src/connections/provision.js';
import { rolesFor } from '../../src/connections/roles.js';
import { PendingSignIns } from '../../src/connections/pending.js';
import { ConnectionRegistry } from '../../src/connections/registry.js';
import { createLogger } from '../../src/observability/logger.js';
import { createAuditLog } from '../../src/audit/log.js';
import { RateLimits } from '../../src/http/limits.js';
import { createRenderer } from '../../src/http/render.js';
import { VIEWS_DIR } from '../../src/index.js';

const PASSWORD = 'correct-horse-battery-staple';

function connectionsOf(connections: unknown[], extra: Partial<ConfigInput> = {}) {
  return parseConfig({ connections, ...extra } as ConfigInput);
}

const oidc = (over: Record<string, unknown> = {}) => ({
  kind: 'oidc',
  id: 'corp',
  name: 'Corp',
  issuer: 'https://login.corp.example',
  clientId: 'mcp-authz',
  clientSecret: 'a-client-secret-of-some-length',
  roles: { default: ['staff'], groups: { 'CN=Finance,OU=Groups,DC=corp,DC=example': ['finance'], admins: ['admin'] } },
  ...over,
});

const identity = (over: Partial<UpstreamIdentityInput> = {}) => upstreamIdentitySchema.parse({ subject: 'upstream-sub-1', username: 'Dana.Ng', groups: [], ...over });

describe('provisioning people from connections', { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-authz-provision-'));
    store = await openStore({ dataDir: dir, redisKeyPrefix: 'x:' });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const conn = (over: Record<string, unknown> = {}) => connectionsOf([oidc(over)]).connections[0]! as ConnectionConfig;

  test('the first sign-in creates an account: derived subject, our username, mapped roles, no password', async () => {
    const c = conn();
    const out = await provisionAccount(store.accounts, c, identity({ email: 'Dana@Corp.Example', displayName: 'Dana Ng', groups: ['cn=finance, ou=groups, dc=corp, dc=example'] }));
    assert.ok('account' in out && out.created);
    assert.equal(out.account.id, accountIdFor('corp', 'upstream-sub-1'));
    assert.notEqual(out.account.id, 'upstream-sub-1', 'the upstream subject is not ours');
    assert.equal(out.account.username, 'dana.ng');
    assert.deepEqual(out.account.roles, ['staff', 'finance'], 'a DN matches whatever its case and spacing');
    const stored = await store.accounts.findById(out.account.id);
    assert.equal(stored?.connection, 'corp');
    assert.equal(stored?.email, 'dana@corp.example');
    assert.equal(stored?.displayName, 'Dana Ng');
    assert.equal(stored?.passwordHash, '');
    // and no password signs in to it, not even an empty one
    const accounts = createAccountService(store.accounts);
    assert.equal(await accounts.authenticate('dana.ng', ''), undefined);
    assert.equal(await accounts.authenticate('dana.ng', PASSWORD), undefined);
  });

  test('a later sign-in finds the same account and sets the roles again (a group left, its role gone)', async () => {
    const c = conn();
    const out = await provisionAccount(store.accounts, c, identity({ username: 'renamed-upstream', groups: ['admins'] }));
    assert.ok('account' in out && !out.created);
    assert.equal(out.account.id, accountIdFor('corp', 'upstream-sub-1'));
    assert.equal(out.account.username, 'dana.ng', 'the username stays ours');
    assert.deepEqual((await store.accounts.findById(out.account.id))?.roles, ['staff', 'admin']);
  });

  test("link 'never' (default): a local account of the same name refuses the sign-in", async () => {
    await createAccountService(store.accounts).create('erin', PASSWORD, ['admin']);
    const out = await provisionAccount(store.accounts, conn(), identity({ subject: 'sub-erin', username: 'Erin' }));
    assert.deepEqual(out, { refused: 'username_taken' });
    assert.deepEqual((await store.accounts.findByUsername('erin'))?.roles, ['admin'], 'the local account is untouched');
  });

  test("link 'username': the local account of that name is this person; its roles are kept and the mapped ones added", async () => {
    const out = await provisionAccount(store.accounts, conn({ link: 'username' }), identity({ subject: 'sub-erin', username: 'erin' }));
    assert.ok('account' in out && out.linked);
    assert.equal(out.account.username, 'erin');
    assert.deepEqual((await store.accounts.findByUsername('erin'))?.roles, ['admin', 'staff']);
  });

  test("link 'verified_email': only a verified address links; an unverified one never does", async () => {
    await createAccountService(store.accounts).create('fay@corp.example', PASSWORD, []);
    const c = conn({ link: 'verified_email' });
    const unverified = await provisionAccount(store.accounts, c, identity({ subject: 'sub-fay', username: 'fay', email: 'fay@corp.example', emailVerified: false }));
    assert.ok('account' in unverified && unverified.created && !unverified.linked, 'not linked: a new account of its own');
    assert.notEqual(unverified.account.username, 'fay@corp.example');
    const verified = await provisionAccount(store.accounts, c, identity({ subject: 'sub-fay-2', username: 'fay2', email: 'FAY@corp.example', emailVerified: true }));
    assert.ok('account' in verified && verified.linked);
    assert.equal(verified.account.username, 'fay@corp.example');
  });

  test("an account another connection made is never linked, whatever the rule", async () => {
    const other = connectionsOf([oidc({ id: 'partner', link: 'username' })]).connections[0]! as ConnectionConfig;
    const out = await provisionAccount(store.accounts, other, identity({ subject: 'partner-sub', username: 'dana.ng' }));
    assert.deepEqual(out, { refused: 'account_of_another_connection' });
  });

  test('usernames: our characters only, at most 64; nothing usable gives a name from the connection', () => {
    assert.equal(usernameFor('corp', identity({ username: 'Zoë Müller' })), 'zoe-muller', 'accents dropped, a space made a dash');
    assert.equal(usernameFor('corp', identity({ username: 'a'.repeat(100) })).length, 64);
    assert.match(usernameFor('corp', identity({ username: '日本語' })), /^corp-[a-z0-9_-]{12}$/);
    assert.equal(usernameFor('corp', identity({ username: undefined, email: 'Gus@Corp.Example' })), 'gus@corp.example');
  });

  test('roles: defaults plus mapped groups; unknown groups give none', () => {
    const c = conn();
    assert.deepEqual(rolesFor(c, []), ['staff']);
    assert.deepEqual(rolesFor(c, ['nobody', 'ADMINS ']), ['staff', 'admin']);
  });

  test('pending upstream sign-ins are single-use', async () => {
    const pending = new PendingSignIns(store, 60);
    const key = await pending.begin({ uid: 'uid-1', connection: 'corp', values: { nonce: 'n' } });
    assert.equal(await pending.has(key), true);
    const [first, second] = await Promise.all([pending.take(key), pending.take(key)]);
    assert.deepEqual([first, second].filter(Boolean), [{ uid: 'uid-1', connection: 'corp', values: { nonce: 'n' } }], 'exactly one taker');
    assert.equal(await pending.take(key), undefined);
    assert.equal(await pending.take('never-issued'), undefined);
    assert.equal(await pending.take(''), undefined);
  });
});

describe('home-realm discovery and connection configuration', { timeout: 30_000 }, () => {
  test('an address on a connection domain finds it (any case, subdomains are not included); disabled ones never', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-hrd-'));
    const store = await openStore({ dataDir: dir, redisKeyPrefix: 'x:' });
    try {
      const config = connectionsOf([
        oidc({ domains: ['Corp.Example'] }),
        { kind: 'ldap', id: 'old', name: 'Old', enabled: false, domains: ['old.example'], url: 'ldaps://dc.old.example', bindDn: 'cn=svc', bindPassword: 'x', userBase: 'dc=old' },
      ]);
      const audit = createAuditLog({ config, store, log: createLogger('silent') });
      const log = createLogger('silent');
      const limits = new RateLimits(store.limits, config.rateLimits, log, audit);
      const render = createRenderer({ viewsDir: VIEWS_DIR, cache: true });
      const registry = new ConnectionRegistry(config, { config, store, log, basePath: '', audit, limits, render, cookieKeys: ['a-cookie-key-for-tests-that-is-long-enough-43'] });
      assert.equal(registry.forEmail('someone@CORP.example')?.config.id, 'corp');
      assert.equal(registry.forEmail('someone@sub.corp.example'), undefined);
      assert.equal(registry.forEmail('someone@old.example'), undefined, 'a disabled connection is not discovered');
      assert.equal(registry.forEmail('no-at-sign'), undefined);
      assert.deepEqual(registry.enabled().map((d) => d.config.id), ['corp']);
      await audit.close();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('refused: duplicate ids, a domain on two connections, an OIDC connection with neither or both secrets, a missing secret file or variable', () => {
    const refused = (connections: unknown[], pattern: RegExp) => assert.throws(() => connectionsOf(connections), pattern);
    refused([oidc(), oidc()], /connection ids must be unique/);
    refused([oidc({ domains: ['a.example'] }), oidc({ id: 'two', domains: ['A.example'] })], /a domain belongs to one connection at most/);
    refused([oidc({ clientSecret: undefined })], /connections\[0\]\.clientSecret: set clientSecret or privateKey/);
    refused([oidc({ privateKey: '{}' })], /set clientSecret or privateKey/);
    refused([oidc({ clientSecret: { file: '/nonexistent/secret' } })], /connections\[0\]\.clientSecret: cannot read \/nonexistent\/secret \(ENOENT\)/);
    refused([oidc({ clientSecret: { env: 'MCP_AUTHZ_TEST_UNSET_VARIABLE' } })], /the environment variable MCP_AUTHZ_TEST_UNSET_VARIABLE is not set/);
    refused([oidc({ issuer: 'http://login.corp.example' })], /must be https \(http only on a loopback host\)/);
    refused([oidc({ id: 'Bad Id' })], /connections\[0\]\.id/);
  });

  test('a secret from a variable is read, and never appears in an error about another field', () => {
    process.env.MCP_AUTHZ_TEST_SECRET = 'secret-from-the-environment-123';
    try {
      const config = connectionsOf([oidc({ clientSecret: { env: 'MCP_AUTHZ_TEST_SECRET' } })]);
      assert.equal((config.connections[0] as { clientSecret?: string }).clientSecret, 'secret-from-the-environment-123');
      assert.throws(
        () => connectionsOf([oidc({ clientSecret: { env: 'MCP_AUTHZ_TEST_SECRET' }, scopes: 'not-a-list' })]),
        (err: Error) => !err.message.includes('secret-from-the-environment-123') && /scopes/.test(err.message),
      );
    } finally {
      delete process.env.MCP_AUTHZ_TEST_SECRET;
    }
  });
});
