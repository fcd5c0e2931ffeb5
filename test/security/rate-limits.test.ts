/**
 * The rate limits (`rateLimits.*`, src/http/limits.ts) over real HTTP: sign-in per account and
 * source, per source and per account with growing delays, failed client authentication per
 * client and source and per source, the token endpoint per client, registration per source,
 * device user codes per source, metadata document fetches per host — on SQLite (counters in
 * the server's memory), and the sign-in and client authentication limits shared by two
 * replicas on one real Redis, where a token request counts in two script calls (one once its
 * secret reached a grant at that replica: known credentials are not counted as attempts).
 *
 * Sources are told apart with `X-Forwarded-For` (the servers trust the proxy headers).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type TestServer } from '../helpers/server.js';
import { Browser, findForm, type ParsedForm, formData } from '../helpers/browser-driver.js';
import { fixtureConfig, NOTES, PASSWORD, SECRET } from '../helpers/fixtures.js';
import { authorizationRequest, openAuthorization, startDevice } from '../helpers/flows.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { Redis } from 'ioredis';

const WRONG = 'not the right password at all';
const USERS = { alice: [], bob: [], carol: [], dave: [], erin: [], frank: [] };

/** A sign-in form of a fresh authorization request, with the browser holding its cookies. */
async function signInForm(t: TestServer): Promise<{ browser: Browser; form: ParsedForm }> {
  const { url } = await authorizationRequest(t, 'web-app', { scope: 'notes:read', resource: NOTES });
  const browser = new Browser();
  const page = await browser.go(url);
  return { browser, form: findForm(page, '/login') };
}

interface Answer {
  status: number;
  retryAfter: number | undefined;
  html: string;
  headers: Headers;
}

/** Sign-in forms made ahead, so the attempts themselves follow each other closely. */
function signInForms(t: TestServer, n: number) {
  return Promise.all(Array.from({ length: n }, () => signInForm(t)));
}

/**
 * One sign-in attempt from `source`: 303 (signed in), 401 (wrong) or 429 (limited). `trusted`
 * is the cookie a browser got from an earlier sign-in ({@link trustedCookie}).
 */
async function signIn(
  t: TestServer,
  username: string,
  password: string,
  source: string,
  prepared?: { browser: Browser; form: ParsedForm },
  trusted = '',
): Promise<Answer> {
  const { browser, form } = prepared ?? (await signInForm(t));
  const res = await fetch(form.action, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'text/html',
      cookie: [browser.jar.header(form.action), trusted].filter(Boolean).join('; '),
      'x-forwarded-for': source,
    },
    body: formData(form, { username, password }).toString(),
  });
  const retryAfter = res.headers.get('retry-after');
  return { status: res.status, retryAfter: retryAfter === null ? undefined : Number(retryAfter), html: await res.text(), headers: res.headers };
}

/** The trusted-browser cookie (and its signature) a successful sign-in set. */
function trustedCookie(answer: Answer): string {
  const cookies = answer.headers.getSetCookie().filter((c) => c.startsWith('mcp-authz.browser'));
  assert.equal(cookies.length, 2, 'the browser is remembered: the cookie and its signature');
  return cookies.map((c) => c.split(';')[0]).join('; ');
}

function hits(t: TestServer, limit: string): Record<string, unknown>[] {
  return t.logs.filter((l) => l.event === 'rate_limit.hit' && l.limit === limit);
}

function assertLimitedPage(answer: Answer, text: RegExp) {
  assert.equal(answer.status, 429, answer.html.slice(0, 300));
  assert.ok(answer.retryAfter !== undefined && Number.isInteger(answer.retryAfter) && answer.retryAfter >= 1, `Retry-After ${answer.retryAfter}`);
  assert.equal(answer.headers.get('cache-control'), 'no-store');
  assert.match(answer.headers.get('content-type') ?? '', /text\/html/);
  assert.match(answer.html, text);
}

async function accountId(t: TestServer, username: string): Promise<string> {
  return (await t.server.store.accounts.findByUsername(username))!.id;
}

describe('sign-in limits', () => {
  /** short windows: waits are seconds (long enough for the attempts made inside them under a loaded CI) */
  let quick: TestServer;
  /** long windows: nothing expires during a test */
  let slow: TestServer;
  /** the account ceiling: a window of seconds, long enough for the checks made inside it */
  let ceiling: TestServer;
  before(async () => {
    [quick, slow, ceiling] = await Promise.all([
      startServer({
        store: 'sqlite',
        users: USERS,
        config: {
          trustProxy: true,
          rateLimits: { signInPerAccountSource: { max: 3, window: 4 }, signInPerSource: { max: 50, window: 4 } },
        },
      }),
      startServer({
        store: 'sqlite',
        users: USERS,
        config: {
          trustProxy: true,
          rateLimits: { signInPerAccountSource: { max: 3, window: 60 }, signInPerSource: { max: 4, window: 60 }, signInPerAccount: { max: 6, window: 60 } },
        },
      }),
      startServer({
        store: 'sqlite',
        users: USERS,
        config: {
          trustProxy: true,
          rateLimits: { signInPerAccountSource: { max: 3, window: 60 }, signInPerSource: { max: 50, window: 60 }, signInPerAccount: { max: 4, window: 5 } },
        },
      }),
    ]);
  });
  after(() => Promise.all([quick, slow, ceiling].map((t) => t?.stop())));

  test('the review\'s lockout: failures from one source limit that source, never the person signing in from elsewhere', async () => {
    const forms = await signInForms(slow, 5);
    for (let i = 0; i < 3; i++) assert.equal((await signIn(slow, 'alice', WRONG, '10.1.0.1', forms[i])).status, 401);
    // from the guessing source, even the right password waits
    const refused = await signIn(slow, 'alice', PASSWORD, '10.1.0.1', forms[3]);
    assertLimitedPage(refused, /Too many failed sign-ins for this account from here/);
    const [hit] = hits(slow, 'signInPerAccountSource');
    assert.equal(hit?.key, 'account+source');
    assert.equal(hit?.accountId, await accountId(slow, 'alice'), 'the account id is logged');
    assert.equal(hit?.source, '10.1.0.1');
    assert.ok(!JSON.stringify(slow.logs).includes(PASSWORD), 'no password in any log line');
    assert.ok(!JSON.stringify(hits(slow, 'signInPerAccountSource')).includes('alice'), 'nor the username in the limit log');
    // alice, from anywhere else, signs in at once
    assert.equal((await signIn(slow, 'Alice', PASSWORD, '10.1.0.2', forms[4])).status, 303);
  });

  test('growing delays: every attempt while limited doubles the wait', async () => {
    const forms = await signInForms(quick, 6);
    const guesses = await Promise.all([0, 1, 2].map((i) => signIn(quick, 'erin', WRONG, '10.2.0.1', forms[i])));
    assert.deepEqual(guesses.map((g) => g.status), [401, 401, 401]);
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = await signIn(quick, 'erin', i === 2 ? PASSWORD : WRONG, '10.2.0.1', forms[3 + i]);
      assertLimitedPage(answer, /Too many failed sign-ins/);
      waits.push(answer.retryAfter!);
    }
    // the window leaves within 4 seconds, doubled; then about 16 and 32 seconds
    assert.ok(waits[0]! <= 8, `first wait ${waits[0]}`);
    assert.ok(waits[1]! > waits[0]! && waits[2]! > waits[1]!, `waits grow: ${waits.join(', ')}`);
    assert.ok(waits[2]! >= 2 * waits[0]!, `waits double: ${waits.join(', ')}`);
  });

  test('the account ceiling: guesses from many sources hold up new browsers for its window, never a browser that signed in before', async () => {
    const own = await signIn(ceiling, 'carol', PASSWORD, '10.5.0.100');
    assert.equal(own.status, 303);
    const trusted = trustedCookie(own);
    const forged = trusted.replace(
      /mcp-authz\.browser=[^;]+/,
      `mcp-authz.browser=${Buffer.from(JSON.stringify({ id: 'A'.repeat(22), accounts: [await accountId(ceiling, 'carol')] })).toString('base64url')}`,
    );
    // forms made ahead and guesses sent at once: the window (5 s) is far from over when the checks run
    const forms = await signInForms(ceiling, 8);
    const guesses = await Promise.all([1, 2, 3, 4].map((i) => signIn(ceiling, 'carol', WRONG, `10.5.0.${i}`, forms[i - 1])));
    assert.deepEqual(guesses.map((g) => g.status), [401, 401, 401, 401]);
    const stranger = await signIn(ceiling, 'carol', PASSWORD, '10.5.0.9', forms[4]);
    assertLimitedPage(stranger, /too many failed sign-ins from many places/);
    // a forged or altered cookie is no trusted browser
    assert.equal((await signIn(ceiling, 'carol', PASSWORD, '10.5.0.11', forms[5], forged)).status, 429);
    const [hit] = hits(ceiling, 'signInPerAccount');
    assert.equal(hit?.key, 'account');
    assert.equal(hit?.accountId, await accountId(ceiling, 'carol'));
    // carol's own browser signs in, from wherever it is now, even from a guessing source
    assert.equal((await signIn(ceiling, 'carol', PASSWORD, '10.5.0.10', forms[6], trusted)).status, 303);
    assert.equal((await signIn(ceiling, 'carol', PASSWORD, '10.5.0.1', forms[7], trusted)).status, 303);
    // the ceiling lasts its window: refused attempts did not extend it
    await sleep(stranger.retryAfter! * 1000 + 100);
    assert.equal((await signIn(ceiling, 'carol', PASSWORD, '10.5.0.9')).status, 303, 'signed in once the window has passed');
  });

  test('a trusted browser has its own count: a guesser behind the same address cannot hold it up', async () => {
    const own = await signIn(slow, 'erin', PASSWORD, '10.7.0.1');
    const trusted = trustedCookie(own);
    for (let i = 0; i < 3; i++) assert.equal((await signIn(slow, 'erin', WRONG, '10.7.0.1')).status, 401);
    assert.equal((await signIn(slow, 'erin', PASSWORD, '10.7.0.1')).status, 429, 'the guessing address waits');
    assert.equal((await signIn(slow, 'erin', PASSWORD, '10.7.0.1', undefined, trusted)).status, 303, 'the trusted browser there does not');
  });

  test('per source: failures against any accounts add up; a success forgets the source\'s failures at that account, not overall', async () => {
    const [x, y] = ['10.3.0.1', '10.3.0.2'];
    assert.equal((await signIn(slow, 'bob', WRONG, x)).status, 401);
    assert.equal((await signIn(slow, 'bob', WRONG, x)).status, 401);
    assert.equal((await signIn(slow, 'bob', PASSWORD, x)).status, 303);
    // bob's two failures from x are forgotten: two more are not over the limit of 3
    assert.equal((await signIn(slow, 'bob', WRONG, x)).status, 401);
    assert.equal((await signIn(slow, 'bob', WRONG, y)).status, 401, 'a success reset the count for bob from x');
    assert.equal((await signIn(slow, 'bob', PASSWORD, y)).status, 303);
    // x has three failures in all: one more at another account reaches the source's limit of 4
    assert.equal((await signIn(slow, 'dave', WRONG, x)).status, 401);
    const refused = await signIn(slow, 'dave', PASSWORD, x);
    assertLimitedPage(refused, /Too many failed sign-ins from here/);
    const [hit] = hits(slow, 'signInPerSource');
    assert.equal(hit?.key, 'source');
    assert.equal(hit?.source, x);
    assert.equal(hit?.accountId, undefined, 'a source refusal names no account');
    assert.equal((await signIn(slow, 'dave', PASSWORD, y)).status, 303, 'another source is not limited');
  });

  test('concurrent wrong guesses cannot all slip through before the first failure counts', async () => {
    // from one source: its limit for the account (3)
    const one = await Promise.all(Array.from({ length: 8 }, () => signIn(slow, 'frank', WRONG, '10.4.0.1')));
    assert.deepEqual(one.map((a) => a.status).sort(), [401, 401, 401, 429, 429, 429, 429, 429]);
    // from many: the account's ceiling (6), of which 3 are spent
    const many = await Promise.all(Array.from({ length: 8 }, (_, i) => signIn(slow, 'frank', WRONG, `10.4.1.${i + 1}`)));
    assert.deepEqual(many.map((a) => a.status).sort(), [401, 401, 401, 429, 429, 429, 429, 429]);
  });
});

describe('token endpoint limit per client', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ store: 'sqlite', config: { trustProxy: true, rateLimits: { tokenPerClient: { max: 3, window: 60 } } } });
  });
  after(() => t?.stop());

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  async function token(body: Record<string, string>, headers: Record<string, string> = {}) {
    const res = await fetch(t.url('/token'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body: new URLSearchParams(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, string> };
  }
  const credentials = (id: string, secret = SECRET) => token({ grant_type: 'client_credentials', resource: NOTES }, { authorization: basic(id, secret) });

  test('over the limit: 429, Retry-After and temporarily_unavailable; another client is unaffected', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await credentials('nightly-report')).status, 200);
    const over = await credentials('nightly-report');
    assert.equal(over.status, 429);
    assert.equal(over.body.error, 'temporarily_unavailable');
    assert.match(over.body.error_description ?? '', /too many token requests/);
    const retryAfter = Number(over.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(over.headers.get('cache-control'), 'no-store');
    const [hit] = hits(t, 'tokenPerClient');
    assert.equal(hit?.clientId, 'nightly-report');
    assert.equal(hit?.key, 'client');
    assert.equal((await credentials('notes-server')).status, 200, 'another client has its own count');
  });

  test('requests naming a client without its credentials are not counted: nobody can lock a client out', async () => {
    for (let i = 0; i < 10; i++) {
      const forged = await token({ grant_type: 'client_credentials', resource: NOTES }, { authorization: basic('report-post', 'not-the-secret-of-this-client'), 'x-forwarded-for': '10.8.0.1' });
      assert.equal(forged.status, 401);
      assert.equal(forged.body.error, 'invalid_client');
    }
    const post = () => token({ grant_type: 'client_credentials', client_id: 'report-post', client_secret: SECRET });
    for (let i = 0; i < 3; i++) assert.equal((await post()).status, 200, `authenticated request ${i + 1}`);
    assert.equal((await post()).status, 429);
  });

  test('a public client is counted per source; a device polling over the limit gets slow_down', async () => {
    const { device_code } = await startDevice(t);
    const poll = (source: string) =>
      token({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code, client_id: 'tv-app' }, { 'x-forwarded-for': source });
    for (let i = 0; i < 3; i++) {
      const pending = await poll('10.5.0.1');
      assert.equal(pending.status, 400);
      assert.match(pending.body.error ?? '', /^(authorization_pending|slow_down)$/);
    }
    const over = await poll('10.5.0.1');
    assert.equal(over.status, 429);
    assert.equal(over.body.error, 'slow_down');
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
    assert.equal((await poll('10.5.0.2')).status, 400, 'another installation (source) of the same app is not limited');
  });
});

describe('failed client authentication', () => {
  let t: TestServer;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  before(async () => {
    const fixture = fixtureConfig();
    t = await startServer({
      store: 'sqlite',
      config: {
        ...fixture,
        clients: [
          ...fixture.clients!,
          { client_id: 'signer', jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kty: 'EC', kid: 'k1', alg: 'ES256', use: 'sig' }] }, grant_types: ['client_credentials'] },
        ],
        trustProxy: true,
      },
    });
  });
  after(() => t?.stop());

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  async function post(path: string, body: Record<string, string>, headers: Record<string, string>) {
    const res = await fetch(t.url(path), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : {}) as Record<string, string> };
  }
  const tokenWith = (id: string, secret: string, source: string) =>
    post('/token', { grant_type: 'client_credentials', resource: NOTES }, { authorization: basic(id, secret), 'x-forwarded-for': source });

  test('the review\'s burst: 60 wrong secrets for one client at once — 10 are tried, the rest get 429; the right secret from elsewhere works', async () => {
    const burst = await Promise.all(Array.from({ length: 60 }, (_, i) => tokenWith('nightly-report', `wrong-secret-number-${i}-xxxxxxxx`, '10.20.0.1')));
    const statuses = burst.map((b) => b.status);
    assert.equal(statuses.filter((s) => s === 401).length, 10, 'exactly the default budget is tried');
    assert.equal(statuses.filter((s) => s === 429).length, 50);
    const limited = burst.find((b) => b.status === 429)!;
    assert.equal(limited.body.error, 'temporarily_unavailable');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    // the guessing address waits even with the right secret; any other address is served
    assert.equal((await tokenWith('nightly-report', SECRET, '10.20.0.1')).status, 429);
    assert.equal((await tokenWith('nightly-report', SECRET, '10.20.0.2')).status, 200);
    const [hit] = hits(t, 'clientAuthFailuresPerClientSource');
    assert.equal(hit?.key, 'client+source');
    assert.equal(hit?.clientId, 'nightly-report');
    assert.equal(hit?.source, '10.20.0.1');
    assert.ok(!JSON.stringify(t.logs).includes('wrong-secret-number'), 'no guessed secret in the logs');
  });

  test('bad private_key_jwt assertions count the same; introspection and revocation share the budget', async () => {
    const { privateKey: stranger } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const assertion = (key: typeof stranger) =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('signer').setSubject('signer').setAudience(t.issuer).setJti(randomUUID()).setIssuedAt().setExpirationTime('2m').sign(key);
    const jwtToken = async (key: typeof stranger, source: string) =>
      post(
        '/token',
        { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion(key) },
        { 'x-forwarded-for': source },
      );
    for (let i = 0; i < 10; i++) assert.equal((await jwtToken(stranger, '10.21.0.1')).status, 401, `bad assertion ${i + 1}`);
    assert.equal((await jwtToken(stranger, '10.21.0.1')).status, 429);
    assert.equal((await jwtToken(privateKey, '10.21.0.1')).status, 429, 'the right key waits there too');
    assert.equal((await jwtToken(privateKey, '10.21.0.2')).status, 200, 'and works from elsewhere');

    const source = { 'x-forwarded-for': '10.22.0.1' };
    for (let i = 0; i < 5; i++) assert.equal((await post('/token/introspection', { token: 'x' }, { ...source, authorization: basic('notes-server', 'wrong-secret-value-0000') })).status, 401);
    for (let i = 0; i < 5; i++) assert.equal((await post('/token/revocation', { token: 'x' }, { ...source, authorization: basic('notes-server', 'wrong-secret-value-0000') })).status, 401);
    assert.equal((await post('/token/introspection', { token: 'x' }, { ...source, authorization: basic('notes-server', SECRET) })).status, 429);
    // a right secret at those endpoints is not counted against anyone
    for (let i = 0; i < 12; i++) assert.equal((await post('/token/introspection', { token: 'x' }, { 'x-forwarded-for': '10.22.0.2', authorization: basic('notes-server', SECRET) })).status, 200);
  });

  test('the right secret never spends the budget: its first grant takes the attempt back and clears its failures from there; after that it is not counted at all', async () => {
    const source = '10.24.0.1';
    const token = (secret: string) => tokenWith('notes-server', secret, source);
    const wrong = 'a-wrong-secret-0000000';
    // notes-server has not reached a grant on this server yet (the test above used other endpoints)
    for (let i = 0; i < 9; i++) assert.equal((await token(wrong)).status, 401, `failure ${i + 1}`);
    assert.equal((await token(SECRET)).status, 200, 'the right secret, counted and taken back');
    for (let i = 0; i < 10; i++) assert.equal((await token(wrong)).status, 401, `failure ${i + 1} after the reset: the client+source count was cleared`);
    assert.equal((await token(wrong)).status, 429, 'then the budget is spent');
    // the right secret reached a grant: sent again it is no guess, and passes while guesses from its address wait
    for (let i = 0; i < 3; i++) assert.equal((await token(SECRET)).status, 200, `known secret ${i + 1}`);
    assert.equal((await token(wrong)).status, 429, 'and it cleared nothing: the guesses still wait');

    // 19 failures count for the source (its limit is 30): 11 more at other clients and the address is held ...
    for (const [id, n] of [['c-x', 6], ['c-y', 5]] as const) for (let i = 0; i < n; i++) assert.equal((await tokenWith(id, wrong, source)).status, 401);
    assert.equal((await tokenWith('c-z', wrong, source)).status, 429, 'the source spent its 30 failures');
    // ... for everything but credentials known to be right
    assert.equal((await token(SECRET)).status, 200);
    const unknown = await post('/token', { grant_type: 'client_credentials', client_id: 'report-post', client_secret: SECRET }, { 'x-forwarded-for': source });
    assert.equal(unknown.status, 429, 'a right secret that has not reached a grant lately waits like a guess');
  });

  test('credentials refused before the engine checked them are not known to be right: repeated, they are counted', async () => {
    const source = '10.25.0.1';
    const guess = 'a-guess-refused-before-authentication';
    // a JSON body: invalid_request before the engine looks at the secret (the attempt is taken back)
    const early = await fetch(t.url('/token'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic('nightly-report', guess), 'x-forwarded-for': source },
      body: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    assert.equal(early.status, 400);
    assert.equal(((await early.json()) as { error?: string }).error, 'invalid_request');
    for (let i = 0; i < 10; i++) assert.equal((await tokenWith('nightly-report', guess, source)).status, 401, `guess ${i + 1}`);
    assert.equal((await tokenWith('nightly-report', guess, source)).status, 429);
    // a right secret that did reach a grant (the first test's, from 10.20.0.2) is known everywhere
    assert.equal((await tokenWith('nightly-report', SECRET, source)).status, 200);
  });

  test('per source: failures at many clients add up', async () => {
    const source = '10.23.0.1';
    const ids = ['c-a', 'c-b', 'c-c', 'c-d', 'c-e', 'c-f'];
    let n = 0;
    for (const id of ids) for (let i = 0; i < 5; i++, n++) assert.equal((await tokenWith(id, 'a-wrong-secret-0000000', source)).status, 401, `failure ${n + 1}`);
    const refused = await post('/token', { grant_type: 'client_credentials', client_id: 'report-post', client_secret: SECRET }, { 'x-forwarded-for': source });
    assert.equal(refused.status, 429, 'the source spent its 30 failures');
    assert.equal(hits(t, 'clientAuthFailuresPerSource')[0]?.key, 'source');
  });
});

describe('registration, user code and metadata document limits', () => {
  let t: TestServer;
  let documents: Server;
  let port = 0;
  const fetched = new Map<string, number>();
  before(async () => {
    documents = createHttpServer((req, res) => {
      const path = req.url ?? '/';
      fetched.set(path, (fetched.get(path) ?? 0) + 1);
      const host = req.headers.host ?? '';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          client_id: `http://${host}${path}`,
          client_name: 'Doc Client',
          redirect_uris: ['http://127.0.0.1/callback'],
          token_endpoint_auth_method: 'none',
        }),
      );
    });
    await new Promise<void>((resolve) => documents.listen(0, '127.0.0.1', resolve));
    port = (documents.address() as AddressInfo).port;
    t = await startServer({
      store: 'sqlite',
      config: {
        cimd: { dangerouslyAllowPrivateNetwork: true },
        rateLimits: { registrationPerSource: { max: 2, window: 60 }, userCodesPerSource: { max: 2, window: 60 }, documentFetchesPerHost: { max: 2, window: 60 } },
      },
    });
  });
  after(async () => {
    await t?.stop();
    documents?.closeAllConnections();
    await new Promise<void>((resolve) => documents?.close(() => resolve()));
  });

  test('registration: 429 with Retry-After and temporarily_unavailable past the limit per source', async () => {
    const register = (n: number) =>
      fetch(t.url('/register'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: [`http://127.0.0.1:${5000 + n}/cb`], token_endpoint_auth_method: 'none', client_name: `app ${n}` }),
      });
    assert.equal((await register(1)).status, 201);
    assert.equal((await register(2)).status, 201);
    const over = await register(3);
    assert.equal(over.status, 429);
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
    assert.equal(over.headers.get('cache-control'), 'no-store');
    assert.equal(((await over.json()) as { error?: string }).error, 'temporarily_unavailable');
    assert.equal(hits(t, 'registrationPerSource')[0]?.key, 'source');
  });

  test('user codes: right codes do not count, wrong ones do; then 429 even for a right code', async () => {
    const da = await startDevice(t);
    const browser = new Browser();
    const enter = async (code: string) => {
      const page = await browser.go(t.url('/device'));
      return browser.submit(findForm(page, '/device'), { user_code: code });
    };
    for (let i = 0; i < 3; i++) assert.equal((await enter(da.user_code)).status, 200, 'a right code shows the confirmation');
    assert.equal((await enter('BCDF-GHJK')).status, 400);
    assert.equal((await enter('BCDF-GHJL')).status, 400);
    const over = await enter(da.user_code);
    assert.equal(over.status, 429);
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
    assert.match(over.html, /Too many wrong codes/);
    assert.equal(hits(t, 'userCodesPerSource').length, 1);
  });

  test('metadata documents: past the fetches per host, 429 without a fetch (page and JSON); another host is unaffected', async () => {
    const doc = (host: string, n: number) => `http://${host}:${port}/clients/${n}.json`;
    const authorize = (clientId: string) => openAuthorization(t, clientId, 'http://127.0.0.1/callback');
    for (const n of [1, 2]) {
      const res = await authorize(doc('localhost', n));
      assert.equal(res.status, 303, `document ${n} is fetched and the request goes on to sign-in`);
      assert.match(res.headers.get('location') ?? '', /\/interaction\//);
    }
    const page = await authorize(doc('localhost', 3));
    assert.equal(page.status, 429);
    assert.ok(Number(page.headers.get('retry-after')) >= 1);
    assert.equal(page.headers.get('location'), null, 'never a redirect to the client');
    assert.match(await page.text(), /Too many requests/);
    assert.equal(fetched.get('/clients/3.json'), undefined, 'the document was not fetched');
    // the same host with a trailing dot or in capitals is the same host: no fresh budget
    // (https ids: the count is taken before anything is fetched)
    for (const [host, n] of [['localhost.', 6], ['LOCALHOST', 7]] as const) {
      assert.equal((await authorize(`https://${host}:${port}/clients/${n}.json`)).status, 429, `${host} shares the count of localhost`);
      assert.equal(fetched.get(`/clients/${n}.json`), undefined);
    }

    const json = await fetch(t.url('/token'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', code_verifier: 'y'.repeat(43), redirect_uri: 'http://127.0.0.1/callback', client_id: doc('localhost', 4) }),
    });
    assert.equal(json.status, 429);
    assert.ok(Number(json.headers.get('retry-after')) >= 1);
    assert.equal(((await json.json()) as { error?: string }).error, 'temporarily_unavailable');
    assert.equal(fetched.get('/clients/4.json'), undefined);

    const [hit] = hits(t, 'documentFetchesPerHost');
    assert.equal(hit?.key, 'host');
    assert.equal(hit?.host, 'localhost');
    assert.equal((await authorize(doc('127.0.0.1', 5))).status, 303, 'another host has its own count');
    assert.equal((await authorize(doc('localhost', 1))).status, 303, 'a cached document needs no fetch');
  });
});

describe('two replicas on one Redis', () => {
  let redis: RedisServer;
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    redis = await startRedis();
    const shared = { store: 'redis' as const, redisUrl: redis.url, redisKeyPrefix: 'limits:', users: USERS };
    const fixture = fixtureConfig();
    // a client of its own for the reset test: its secret reaches a grant at neither replica before
    const clients = [...fixture.clients!, { client_id: 'report-basic', client_secret: SECRET, grant_types: ['client_credentials' as const], resources: [NOTES] }];
    const config = { clients, trustProxy: true, rateLimits: { signInPerAccountSource: { max: 3, window: 60 }, signInPerAccount: { max: 4, window: 60 } } };
    a = await startServer({ ...shared, config });
    b = await startServer({ ...shared, config });
  });
  after(async () => {
    await Promise.all([a, b].map((t) => t?.stop()));
    await redis?.stop();
  });

  test('failed sign-ins at one replica count at the other', async () => {
    // one source's failures for an account, spread over both replicas
    for (const t of [a, b, a]) assert.equal((await signIn(t, 'alice', WRONG, '10.6.0.1')).status, 401);
    assertLimitedPage(await signIn(b, 'alice', PASSWORD, '10.6.0.1'), /Too many failed sign-ins for this account from here/);
    // the account's ceiling, from many sources at both
    assert.equal((await signIn(b, 'alice', WRONG, '10.6.0.2')).status, 401);
    const refused = await signIn(a, 'alice', PASSWORD, '10.6.0.9');
    assertLimitedPage(refused, /too many failed sign-ins from many places/);
    assert.equal(hits(a, 'signInPerAccount')[0]?.accountId, await accountId(a, 'alice'));
    assert.equal((await signIn(b, 'bob', PASSWORD, '10.6.0.9')).status, 303, 'other accounts are unaffected');
  });

  const tokenAt = (t: TestServer, secret: string, source: string, client = 'nightly-report') =>
    fetch(t.url('/token'), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${client}:${secret}`).toString('base64')}`,
        'x-forwarded-for': source,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES }),
    }).then((r) => r.status);

  test('failed client authentications at one replica count at the other', async () => {
    const statuses = await Promise.all(Array.from({ length: 16 }, (_, i) => tokenAt(i % 2 ? a : b, 'not-the-secret-at-all', '10.6.1.1')));
    assert.equal(statuses.filter((s) => s === 401).length, 10, 'exactly the budget, across both');
    assert.equal(await tokenAt(a, SECRET, '10.6.1.1'), 429);
    assert.equal(await tokenAt(b, SECRET, '10.6.1.2'), 200);
  });

  test('a token request is counted in two calls to Redis, in one once its secret reached a grant at that replica; the right secret is taken back there too', async () => {
    const inspector = new Redis(redis.url);
    try {
      // script calls: Redis counts the commands a script runs under their own names
      const scriptCalls = async () => Number((await inspector.info('commandstats')).match(/cmdstat_evalsha:calls=(\d+)/)?.[1] ?? 0);
      assert.equal(await tokenAt(a, SECRET, '10.6.2.1'), 200, 'scripts loaded');
      // notes-server's secret is new to both replicas: the client authentication attempt is counted
      // up front, then taken back together with the token's count (a background task may add one)
      let before = await scriptCalls();
      assert.equal(await tokenAt(a, SECRET, '10.6.2.1', 'notes-server'), 200);
      let calls = (await scriptCalls()) - before;
      assert.ok(calls >= 2 && calls <= 3, `${calls} script calls for a secret new to the replica`);
      // now known to be right at a: only the token is counted
      before = await scriptCalls();
      for (let i = 0; i < 10; i++) assert.equal(await tokenAt(a, SECRET, '10.6.2.1', 'notes-server'), 200);
      calls = (await scriptCalls()) - before;
      assert.ok(calls >= 10 && calls <= 12, `${calls} script calls for 10 token requests with a known secret`);

      // the first grant at each replica clears the client's failures from that address, for both
      for (let i = 0; i < 9; i++) assert.equal(await tokenAt(a, 'not-the-secret-at-all', '10.6.2.2', 'report-basic'), 401);
      assert.equal(await tokenAt(b, SECRET, '10.6.2.2', 'report-basic'), 200, 'the right secret resets the client+source count, at the other replica');
      for (let i = 0; i < 9; i++) assert.equal(await tokenAt(b, 'not-the-secret-at-all', '10.6.2.2', 'report-basic'), 401, `failure ${i + 1} after the reset`);
      assert.equal(await tokenAt(a, SECRET, '10.6.2.2', 'report-basic'), 200, 'and at the first replica');
      for (let i = 0; i < 10; i++) assert.equal(await tokenAt(a, 'not-the-secret-at-all', '10.6.2.2', 'report-basic'), 401, `failure ${i + 1} after the second reset`);
      assert.equal(await tokenAt(b, 'not-the-secret-at-all', '10.6.2.2', 'report-basic'), 429);
      for (let i = 0; i < 15; i++) assert.equal(await tokenAt(i % 2 ? a : b, SECRET, '10.6.2.3', 'report-basic'), 200, 'right secrets spend no budget');
    } finally {
      inspector.disconnect();
    }
  });
});

describe('without trustProxy, X-Forwarded-For is ignored', () => {
  let t: TestServer;
  before(async () => {
    // trustProxy is off by default; said here so the test names what it depends on
    t = await startServer({ store: 'sqlite', config: { trustProxy: false, rateLimits: { registrationPerSource: { max: 2, window: 60 } } } });
  });
  after(async () => {
    await t?.stop();
  });

  test('a flood from one address, each request claiming another X-Forwarded-For, still meets the per-source limit; the source logged is the socket address', async () => {
    const register = (n: number) =>
      fetch(t.url('/register'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': `10.7.0.${n}`, 'x-real-ip': `10.7.1.${n}` },
        body: JSON.stringify({ redirect_uris: [`http://127.0.0.1:${6000 + n}/cb`], token_endpoint_auth_method: 'none', client_name: `app ${n}` }),
      });
    assert.equal((await register(1)).status, 201);
    assert.equal((await register(2)).status, 201);
    const over = await register(3);
    assert.equal(over.status, 429, 'a third registration from the same socket address is over the limit, whatever X-Forwarded-For says');
    assert.equal(((await over.json()) as { error?: string }).error, 'temporarily_unavailable');
    const [hit] = hits(t, 'registrationPerSource');
    assert.match(String(hit?.source), /^(::ffff:)?127\.0\.0\.1$/, `the socket address, not a forwarded one: ${JSON.stringify(hit)}`);
  });
});
