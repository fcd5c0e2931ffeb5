/**
 * Property-based search for security bugs in the HTML forms a person submits (issue #16,
 * point 5; the OAuth endpoints are test/security/fuzz-properties.test.ts), against one server
 * (SQLite). Every form is posted inside a REAL flow — an authorization request of a registered
 * client with PKCE, so a live interaction uid, its CSRF token and the browser's cookies — with
 * fields mixing the VALID values (the right CSRF token, alice's username and password, real
 * scope checkbox values, the real uid, real user codes and grant ids) with hostile ones
 * (test/helpers/hostile-strings.ts: full Unicode, RTL overrides, zero-width, CR/LF/NUL,
 * overlong strings, percent and double encodings, repeated and missing fields, markup), a
 * wrong CSRF token, another interaction's uid or token, or no cookies at all.
 *
 * Forms: sign-in (`/interaction/:uid/login`), consent (`/confirm`, its scope ticks) and Deny
 * (`/abort`), the second-factor code (`/interaction/:uid/second-factor`), device code entry and
 * confirmation (`/device`), the tool-call approval (`/approvals/:id`, approve or refuse) and the
 * connected-apps revoke forms (`/account/apps/revoke`, `/revoke-all`). Not covered here: the
 * account-security page's enrolment forms and passkey ceremonies, connection sign-in.
 *
 * Properties checked on every reply:
 *  - no 5xx, no stack trace or file path; an error is an HTML page;
 *  - a redirect off the server goes only to the client's registered redirect URI, with only
 *    code/state/iss or error parameters, none repeated;
 *  - no secret (password, client secret, a code issued) in the body or headers unless the
 *    request itself carried it;
 *  - markup sent in a field never comes back unescaped.
 * And per form:
 *  - sign-in: a session is signed in only when the CSRF token, the uid and one username and one
 *    password were exactly right (the username case-insensitive, the password NFC-normalised:
 *    src/accounts/schema.ts, password.ts) — and then as that account;
 *  - second factor: the login completes only with the right CSRF token and a TOTP code of the
 *    window (one step either side) whose step was not used before, or an unused recovery code;
 *  - consent: the grant changes only with the right CSRF token; it gains only scopes the
 *    request asked for, that exist and that were ticked; a dangerous scope is in the grant
 *    afterwards only if ticked in that very submission; the page offers only what was asked;
 *    Deny sends access_denied to the registered redirect URI;
 *  - device: the confirmation page (and Continue or Cancel) only for the right xsrf token and a
 *    real pending user code (oidc-provider's normalisation: letters uppercased, non-word
 *    characters dropped);
 *  - tool approval: a call is decided only with the right CSRF token, only the person's own
 *    (another person's or another call never), and as chosen (approve → approved, refuse →
 *    denied); its summary (markup from the MCP server) is shown escaped;
 *  - connected apps: a grant is revoked only with the right CSRF token, only the one named and
 *    only the person's own (another person's grant never), and "sign out of all apps" only
 *    with the right token;
 *  - a failed submission leaves the interaction (or page) usable: the exact valid submission
 *    still succeeds afterwards (checked after every 40 failures in a row, and at the end).
 *
 * Runs at the default FUZZ_RUNS=300: sign-in 150, consent 180, second factor 150, device 210,
 * tool approval 240, connected apps 150. Every password check is a real scrypt (128 MiB), which
 * bounds the sign-in runs: the file takes about 45 s on two idle-ish cores, 70–90 s on a busy one.
 *
 * Shown to fail (each mutation built and this file run): skipping the CSRF check in
 * src/http/checked-form.ts (sign-in, consent, second factor, tool approval, connected apps);
 * accepting any password; consent granting every ticked scope, asked for or not; a dangerous
 * scope granted before kept without asking; the username reflected raw in views/login.eta or the
 * summary raw in views/tool-approval.eta; revoke without the owner check; any 6-digit code
 * passing the second factor; any decision other than `approve` taken as refuse; the client
 * secret shown in the client's name (src/interactions/describe.ts); Deny redirecting to the
 * redirect URI with a parameter of its own.
 *
 * Replay: FUZZ_SEED (default 16016) fixes every run; FUZZ_RUNS (default 300) scales the runs
 * (each property states its share).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Browser, CookieJar, authorize, findForm, parseForms, type Page } from '../helpers/browser-driver.js';
import { serverFixture } from '../helpers/harness.js';
import { startDevice } from '../helpers/flows.js';
import { CALENDAR, NOTES, PASSWORD, REDIRECT, SECRET } from '../helpers/fixtures.js';
import {
  FUZZ_RUNS as RUNS,
  FUZZ_SEED as SEED,
  LEAKS,
  encodeText,
  hostileText,
  markup,
  nearMiss,
  pairsFrom,
  serialize,
  unescapedMarkup,
  valueOf,
  type Pair,
  type Value,
} from '../helpers/hostile-strings.js';
import { codeOf, enrolTotp, wrongCodeOf } from '../second-factors/support.js';

const FORM = 'application/x-www-form-urlencoded';
const RESPONSE_PARAMS = new Set(['code', 'state', 'iss', 'error', 'error_description', 'error_uri', 'session_state']);
const generous = { max: 1_000_000, window: 60 };

const b64url = (b: Buffer) => b.toString('base64url');
const challengeOf = (verifier: string) => b64url(createHash('sha256').update(verifier).digest());

/** the same normalisation oidc-provider applies to a typed user code (lib/helpers/user_codes.js) */
const normalizeUserCode = (input: string) => input.replace(/[a-z]/g, (c) => c.toUpperCase()).replace(/\W/g, '');

interface Sent { path: string; body: string; cookies: boolean }
interface Reply { status: number; headers: Headers; text: string; location: URL | undefined }

describe('HTML forms under fuzzing (sqlite)', { timeout: 230_000 }, () => {
  const s = serverFixture('sqlite', {
    users: { alice: [], bob: [], carol: [] },
    config: {
      rateLimits: {
        signInPerAccountSource: generous, signInPerAccount: generous, clientAuthFailuresPerClientSource: generous, clientAuthFailuresPerSource: generous,
        signInPerSource: generous, tokenPerClient: generous, registrationPerSource: generous, userCodesPerSource: generous, documentFetchesPerHost: generous,
      },
    },
  });

  /** everything secret: never in a reply unless the request carried it */
  const secrets = new Set<string>([SECRET, PASSWORD]);
  const reached: Record<string, number> = {};
  const count = (key: string) => { reached[key] = (reached[key] ?? 0) + 1; };
  after(() => console.log(`# fuzz-forms (FUZZ_SEED=${SEED}, FUZZ_RUNS=${RUNS}) reached: ${JSON.stringify(reached)}`));

  const run = <T extends unknown[]>(prop: fc.IAsyncPropertyWithHooks<T>, runs: number) =>
    fc.assert(prop, { seed: SEED, numRuns: Math.max(1, Math.ceil(runs)), endOnFailure: true, includeErrorInReport: true });

  // ---- sending, and what every reply must keep --------------------------------------------------

  async function post(jar: CookieJar, req: Sent): Promise<Reply> {
    const url = s.t.url(req.path);
    const res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': FORM, accept: 'text/html', ...(req.cookies ? { cookie: jar.header(url) } : {}) },
      body: req.body,
    });
    if (req.cookies) jar.store(res);
    const location = res.headers.get('location');
    return { status: res.status, headers: res.headers, text: await res.text(), location: location ? new URL(location, url) : undefined };
  }

  async function get(jar: CookieJar, url: string): Promise<Reply> {
    const res = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html', cookie: jar.header(url) } });
    jar.store(res);
    const location = res.headers.get('location');
    return { status: res.status, headers: res.headers, text: await res.text(), location: location ? new URL(location, url) : undefined };
  }

  const describeReq = (req: Sent) => `POST ${req.path.slice(0, 300)} ${req.body.slice(0, 1500)}${req.cookies ? '' : ' (no cookies)'} (FUZZ_SEED=${SEED})`;

  function checkCommon(req: Sent, reply: Reply) {
    const where = describeReq(req);
    assert.ok(reply.status < 500, `5xx: ${where} → ${reply.status} ${reply.text.slice(0, 300)}`);
    for (const leak of LEAKS) assert.doesNotMatch(reply.text, leak, `${where} leaks ${leak}`);
    const fields = [...new URLSearchParams(req.body)].flat();
    let pathDecoded = req.path;
    try { pathDecoded = decodeURIComponent(req.path); } catch { /* undecodable: raw only */ }
    const sent = `${req.path}\n${pathDecoded}\n${req.body}\n${fields.join('\n')}`;
    const headerText = [...reply.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
    for (const secret of secrets) {
      if (sent.includes(secret) || sent.includes(encodeText(secret))) continue;
      assert.ok(!reply.text.includes(secret) && !headerText.includes(secret), `${where} → reply carries a secret it was not sent: …${secret.slice(-12)}`);
    }
    const raw = unescapedMarkup([...fields, pathDecoded], reply.text);
    assert.equal(raw, undefined, `${where} → reflects ${raw} unescaped: ${reply.text.slice(0, 3000)}`);
    const type = reply.headers.get('content-type') ?? '';
    if (reply.status >= 400) {
      const koaDefault = (reply.status === 404 || reply.status === 405) && type.startsWith('text/plain') && reply.text.length < 40;
      assert.ok(type.includes('text/html') || reply.text === '' || koaDefault, `${where} → ${reply.status} not an HTML page: ${type} ${reply.text.slice(0, 200)}`);
    }
    checkLocation(where, reply);
  }

  /** off the server only to the registered redirect URI, with only OAuth response parameters */
  function checkLocation(where: string, reply: Reply) {
    const target = reply.location;
    if (!target) return;
    const issuer = new URL(s.t.issuer);
    if (target.origin === issuer.origin && target.pathname !== '/callback' && !target.username && !target.password) return;
    const registered = new URL(REDIRECT);
    assert.equal(`${target.protocol}//${target.host}${target.pathname}`, `${registered.protocol}//${registered.host}${registered.pathname}`, `${where} → redirect to ${target.href}`);
    assert.ok(!target.username && !target.password && !target.hash, `${where} → redirect to ${target.href}: userinfo or fragment`);
    const returned = [...target.searchParams.keys()];
    for (const key of returned) assert.ok(RESPONSE_PARAMS.has(key), `${where} → redirect to ${target.href}: foreign parameter ${key}`);
    assert.equal(new Set(returned).size, returned.length, `${where} → redirect to ${target.href}: repeated parameter`);
    assert.ok(target.searchParams.has('code') !== target.searchParams.has('error'), `${where} → redirect to ${target.href}: neither one code nor one error`);
    const code = target.searchParams.get('code');
    if (code) secrets.add(code);
    count(code ? 'callback: code' : `callback: ${target.searchParams.get('error')}`);
  }

  /** the one value of `name` the server reads as a string (a repeated field is an array: refused) */
  const one = (body: string, name: string) => {
    const all = new URLSearchParams(body).getAll(name);
    return all.length === 1 ? all[0] : undefined;
  };

  // ---- real interactions --------------------------------------------------------------------------

  interface Interaction { jar: CookieJar; uid: string; csrf: string; page: Page }

  function authUrl(clientId: string, scope: string, extra: Record<string, string> = {}) {
    const url = new URL(s.t.url('/auth'));
    url.search = new URLSearchParams({
      client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, scope, resource: NOTES,
      code_challenge: challengeOf(b64url(randomBytes(32))), code_challenge_method: 'S256', state: 'st', ...extra,
    }).toString();
    return url.href;
  }

  /** a page a run starts from (its request carried no secret): no secret, no leak */
  function checkPage(page: Page) {
    for (const leak of LEAKS) assert.doesNotMatch(page.html, leak, `${page.url} leaks ${leak}`);
    for (const secret of secrets) assert.ok(!page.html.includes(secret), `${page.url} shows a secret: …${secret.slice(-12)}`);
  }

  /** opens an authorization request in `browser` and returns the interaction page it lands on (`form`: the form it must show) */
  async function interaction(browser: Browser, url: string, form: string): Promise<Interaction> {
    const page = await browser.go(url, {}, REDIRECT);
    checkPage(page);
    const f = findForm(page, form);
    const uid = /\/interaction\/([^/]+)\//.exec(f.action)?.[1];
    const csrf = f.fields.find((x) => x.name === 'csrf')?.value;
    assert.ok(uid && csrf, `an interaction with a CSRF token: ${page.url}`);
    return { jar: browser.jar, uid, csrf, page };
  }

  /** the account the jar's browser session is signed in as, if any */
  async function sessionAccount(jar: CookieJar): Promise<string | undefined> {
    const id = [...jar.cookies.values()].find((c) => c.name === 'mcp_authz_session')?.value;
    if (!id) return undefined;
    const session = (await s.t.server.store.model('Session').find(id)) as { accountId?: string } | undefined;
    return session?.accountId;
  }

  const accountIds = new Map<string, string>();
  before(async () => {
    for (const name of ['alice', 'bob', 'carol']) accountIds.set(name, (await s.t.server.store.accounts.findByUsername(name))!.id);
  });

  /** which uid a run posts to: the live one mostly, else another interaction's, a near miss or junk */
  const uidChoice = fc.oneof(
    { weight: 12, arbitrary: fc.constant({ kind: 'real' as const, junk: '' }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'other' as const, junk: '' }) },
    { weight: 1, arbitrary: nearMiss('-').map((junk) => ({ kind: 'near' as const, junk })) },
    { weight: 1, arbitrary: hostileText.map((junk) => ({ kind: 'junk' as const, junk })) },
  );
  type UidChoice = { kind: 'real' | 'other' | 'near' | 'junk'; junk: string };
  const uidFor = (c: UidChoice, real: string, other: string) => (c.kind === 'real' ? real : c.kind === 'other' ? other : c.kind === 'near' ? real + c.junk : c.junk);

  /** text fields: the valid values, markup, near misses, hostile text and raw bytes */
  const field = (valid: readonly string[], extra: readonly string[] = []) =>
    fc.oneof({ weight: 9, arbitrary: valueOf(valid, extra) }, { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...valid, ''), markup).map(([v, m]): Value => ({ text: v + m })) });

  /**
   * A valid submission (maybe with one extra pair), the valid one with exactly one field
   * replaced by a fuzzed value or left out (the sharpest test of "only when exactly right"), or a
   * fuzzed one; placeholders stand for the live tokens.
   */
  const submission = (valid: Pair[], fields: Record<string, fc.Arbitrary<Value>>, validWeight = 2) =>
    fc.oneof(
      { weight: validWeight, arbitrary: fc.tuple(pairsFrom(fields, Object.keys(fields)), fc.nat({ max: 3 })).map(([extra, n]): Pair[] => [...valid, ...extra.slice(0, n === 3 ? 1 : 0)]) },
      {
        weight: 3,
        arbitrary: fc
          .constantFrom(...valid.map(([name]) => name))
          .chain((name) => fc.option(fields[name]!, { freq: 6 }).map((value): Pair[] => valid.flatMap(([k, v]): Pair[] => (k !== name ? [[k, v]] : value ? [[k, value]] : [])))),
      },
      { weight: 4, arbitrary: pairsFrom(fields, Object.keys(fields)) },
    );

  /** the placeholders a run fills at send time: the live uid and tokens change between runs */
  const LIVE_CSRF = '\u0001live-csrf\u0001';
  const OTHER_CSRF = '\u0001other-csrf\u0001';
  const fill = (pairs: Pair[], csrf: string, other: string): Pair[] =>
    pairs.map(([k, v]) => [k, 'text' in v ? { text: v.text.split(LIVE_CSRF).join(csrf).split(OTHER_CSRF).join(other) } : v]);

  // ---- sign-in -------------------------------------------------------------------------------------

  it('sign-in: a session only for the exact CSRF token, uid, username and password', async () => {
    let live = await interaction(new Browser(), authUrl('web-app', 'notes:read'), '/login');
    const other = await interaction(new Browser(), authUrl('confidential-web', 'notes:read'), '/login');
    const fields = {
      csrf: valueOf([LIVE_CSRF], [OTHER_CSRF, '']),
      username: field(['alice', 'bob'], ['ALICE', 'Bob', 'carol', 'mallory', 'alice ', PASSWORD]),
      password: field([PASSWORD], ['correct horse battery stapler', 'Correct horse battery staple', 'alice', '']),
    };
    const valid: Pair[] = [['csrf', { text: LIVE_CSRF }], ['username', { text: 'alice' }], ['password', { text: PASSWORD }]];
    let failedInARow = 0;

    /** the exact valid submission signs in on the live interaction: it stayed usable */
    async function stillUsable(after: string) {
      const req: Sent = { path: `/interaction/${live.uid}/login`, body: serialize(fill(valid, live.csrf, other.csrf)), cookies: true };
      const reply = await post(live.jar, req);
      checkCommon(req, reply);
      assert.ok(reply.status === 303 && reply.location?.pathname.startsWith('/auth/'), `the interaction is no longer usable after ${after}: ${reply.status} ${reply.text.slice(0, 300)}`);
      checkLocation(describeReq(req), await get(live.jar, reply.location!.href));
      assert.equal(await sessionAccount(live.jar), accountIds.get('alice'));
      count('login: usable after failures');
      live = await interaction(new Browser(), authUrl('web-app', 'notes:read'), '/login');
    }

    await run(
      fc.asyncProperty(
        submission(valid, fields),
        uidChoice,
        fc.oneof({ weight: 10, arbitrary: fc.constant('login') }, { weight: 1, arbitrary: fc.constantFrom('abort', 'confirm') }),
        fc.oneof({ weight: 12, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        async (pairs, uid, action, cookies) => {
          const body = serialize(fill(pairs, live.csrf, other.csrf));
          const req: Sent = { path: `/interaction/${encodeText(uidFor(uid, live.uid, other.uid))}/${action}`, body, cookies };
          const reply = await post(live.jar, req);
          checkCommon(req, reply);
          const where = describeReq(req);
          const csrfRight = one(body, 'csrf') === live.csrf && uid.kind === 'real' && cookies;
          const username = one(body, 'username');
          const password = one(body, 'password');
          const resumed = reply.status === 303 && reply.location?.pathname === `/auth/${live.uid}`;
          // the login reaches the session when the authorization resumes (as the browser would, next)
          if (resumed && action === 'login') checkLocation(where, await get(live.jar, reply.location!.href));
          const account = await sessionAccount(live.jar);
          if (action === 'login') {
            const expected = username !== undefined && /^[A-Za-z0-9._@-]{1,64}$/.test(username) ? accountIds.get(username.toLowerCase()) : undefined;
            const right = csrfRight && expected !== undefined && password?.normalize('NFC') === PASSWORD;
            if (account !== undefined || resumed) {
              assert.ok(right, `${where} → signed in (${account}) without the exact CSRF token, username and password`);
              assert.equal(account, expected, `${where} → signed in as another account`);
              assert.ok(resumed, `${where} → signed in, but not sent back to the authorization`);
              count('login: signed in');
            } else {
              assert.ok(!right, `${where} → the exact sign-in was refused: ${reply.status} ${reply.text.slice(0, 300)}`);
            }
          } else {
            assert.equal(account, undefined, `${where} → ${action} signed someone in`);
            if (resumed) {
              assert.ok(csrfRight && action === 'abort', `${where} → ${action} finished the interaction without its CSRF token`);
              // Deny sends access_denied to the client
              const back = await get(live.jar, reply.location!.href);
              checkLocation(where, back);
              assert.equal(back.location?.searchParams.get('error'), 'access_denied', `${where} → Deny did not end in access_denied: ${back.location?.href}`);
              count('login: denied');
            }
          }
          if (account !== undefined || resumed) {
            failedInARow = 0;
            live = await interaction(new Browser(), authUrl('web-app', 'notes:read'), '/login');
          } else if (++failedInARow % 40 === 0) {
            await stillUsable(where);
            failedInARow = 0;
          }
        },
      ),
      RUNS * 0.5,
    );
    await stillUsable('the last run');
    assert.ok(reached['login: signed in'], `the fuzzer signed in: ${JSON.stringify(reached)}`);
  });
  // ---- consent and Deny ----------------------------------------------------------------------------

  /** per grant of the account and client: per resource indicator, the scopes it allows */
  async function grantsOf(accountId: string, clientId: string): Promise<Map<string, Map<string, Set<string>>>> {
    const out = new Map<string, Map<string, Set<string>>>();
    for (const record of await s.t.server.store.grants.list({ accountId })) {
      if (record.clientId !== clientId) continue;
      const grant = await s.t.server.holder.provider.Grant.find(record.grantId);
      if (!grant) continue;
      const resources = new Map<string, Set<string>>();
      for (const indicator of Object.keys(grant.resources ?? {})) resources.set(indicator, new Set(grant.getResourceScope(indicator).split(' ').filter(Boolean)));
      out.set(record.grantId, resources);
    }
    return out;
  }

  /** the authorization requests consent is fuzzed on: client, resources (in order) and scopes asked */
  const CONSENT_REQUESTS = [
    { clientId: 'web-app', resources: [NOTES], scope: 'notes:read notes:write notes:delete' },
    { clientId: 'confidential-web', resources: [NOTES], scope: 'notes:read' },
    { clientId: 'web-app', resources: [NOTES, CALENDAR], scope: 'notes:write calendar:read' },
    { clientId: 'xss-app', resources: [NOTES], scope: 'notes:write notes:delete' },
  ];
  const EXISTING: Record<string, string[]> = { [NOTES]: ['notes:read', 'notes:write', 'notes:delete'], [CALENDAR]: ['calendar:read'] };
  const TICKS = ['0:notes:read', '0:notes:write', '0:notes:delete', '1:calendar:read', '0:calendar:read', '1:notes:read', '1:notes:delete', '0:openid', '0:offline_access', '0:notes:admin', '2:notes:read', '0:notes:read notes:delete', 'notes:delete', '-1:notes:delete', '00:notes:delete'];

  function consentUrl(request: (typeof CONSENT_REQUESTS)[number]) {
    const url = new URL(authUrl(request.clientId, request.scope, { prompt: 'consent' }));
    url.searchParams.delete('resource');
    for (const r of request.resources) url.searchParams.append('resource', r);
    return url.href;
  }

  it('consent: the grant changes only with the CSRF token, and only by scopes asked for, existing and ticked', async () => {
    const alice = accountIds.get('alice')!;
    const consenter = new Browser();
    const other = await interaction(new Browser(), authUrl('web-app', 'notes:read'), '/login');
    // alice signs in once; every consent after this one is asked again (prompt=consent) in the same session
    const first = await interaction(consenter, consentUrl(CONSENT_REQUESTS[1]!), '/login');
    await consenter.submit(findForm(first.page, '/login'), { username: 'alice', password: PASSWORD }, undefined, REDIRECT);
    let requestIndex = 0;
    let live: Interaction & { request: (typeof CONSENT_REQUESTS)[number] };
    const fresh = async () => {
      const request = CONSENT_REQUESTS[requestIndex++ % CONSENT_REQUESTS.length]!;
      live = { ...(await interaction(consenter, consentUrl(request), '/confirm')), request };
      // the page offers only what was asked for
      const offered = findForm(live.page, '/confirm').fields.filter((f) => f.type === 'checkbox').map((f) => f.value);
      for (const value of offered) {
        const [i, scope] = [Number(value.split(':')[0]), value.split(':').slice(1).join(':')];
        assert.ok(request.scope.split(' ').includes(scope) && EXISTING[request.resources[i]!]?.includes(scope), `the consent page offers ${value} for ${JSON.stringify(request)}`);
      }
    };
    await fresh();
    const tick = fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...TICKS).map((t): Value => ({ text: t })) },
      { weight: 2, arbitrary: fc.constantFrom(...TICKS).chain(nearMiss).map((t): Value => ({ text: t })) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...TICKS), markup).map(([t, m]): Value => ({ text: t + m })) },
      { weight: 1, arbitrary: hostileText.map((t): Value => ({ text: t })) },
    );
    const submissionOf = fc.tuple(
      fc.oneof({ weight: 3, arbitrary: fc.constant<Value>({ text: LIVE_CSRF }) }, { weight: 1, arbitrary: valueOf([LIVE_CSRF], [OTHER_CSRF, '']) }),
      fc.array(tick, { maxLength: 5 }),
      pairsFrom({ csrf: valueOf([LIVE_CSRF], [OTHER_CSRF]), scope: tick }, ['csrf', 'scope']),
      fc.nat({ max: 4 }),
      fc.boolean(),
    ).map(([csrf, ticks, extra, n, csrfFirst]): Pair[] => {
      const scopes = ticks.map((t): Pair => ['scope', t]);
      const base: Pair[] = csrfFirst ? [['csrf', csrf], ...scopes] : [...scopes, ['csrf', csrf]];
      return [...base, ...extra.slice(0, n === 4 ? 2 : 0)];
    });
    await run(
      fc.asyncProperty(
        submissionOf,
        uidChoice,
        fc.oneof({ weight: 10, arbitrary: fc.constant('confirm') }, { weight: 2, arbitrary: fc.constant('abort') }, { weight: 1, arbitrary: fc.constant('login') }),
        fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        async (pairs, uid, action, cookies) => {
          const { request } = live;
          const body = serialize(fill(pairs, live.csrf, other.csrf));
          const req: Sent = { path: `/interaction/${encodeText(uidFor(uid, live.uid, other.uid))}/${action}`, body, cookies };
          const where = describeReq(req);
          const before = await grantsOf(alice, request.clientId);
          const reply = await post(consenter.jar, req);
          checkCommon(req, reply);
          const after = await grantsOf(alice, request.clientId);
          const csrfRight = one(body, 'csrf') === live.csrf && uid.kind === 'real' && cookies;
          const resumed = reply.status === 303 && reply.location?.pathname === `/auth/${live.uid}`;
          const ticked = new Set(new URLSearchParams(body).getAll('scope'));
          // what this submission may add: asked for, existing, ticked with its resource's index
          const allowed = new Set(request.resources.flatMap((uri, i) => request.scope.split(' ').filter((sc) => EXISTING[uri]!.includes(sc) && ticked.has(`${i}:${sc}`)).map((sc) => `${uri} ${sc}`)));
          let changed = false;
          for (const [grantId, resources] of after) {
            for (const [uri, scopes] of resources) {
              for (const scope of scopes) {
                if (before.get(grantId)?.get(uri)?.has(scope)) continue;
                changed = true;
                assert.ok(action === 'confirm' && csrfRight, `${where} → the grant gained ${uri} ${scope} without the CSRF token`);
                assert.ok(allowed.has(`${uri} ${scope}`), `${where} → the grant gained ${uri} ${scope}, not asked for and ticked (asked: ${request.scope} at ${request.resources.join(', ')})`);
              }
            }
          }
          if (!resumed) {
            assert.ok(!changed || action === 'confirm', `${where} → the grant changed without the consent finishing`);
            return;
          }
          assert.ok(csrfRight && action !== 'login', `${where} → ${action} finished the consent without its CSRF token`);
          // the authorization resumes: a code to the registered redirect URI, or access_denied
          const back = await get(consenter.jar, reply.location!.href);
          checkLocation(where, back);
          const error = back.location?.searchParams.get('error');
          const code = back.location?.searchParams.get('code');
          if (action === 'abort') assert.equal(error, 'access_denied', `${where} → Deny did not end in access_denied: ${back.location?.href}`);
          if (code) {
            assert.ok(allowed.size > 0 || [...after.values()].some((r) => [...r.values()].some((set) => set.size > 0)), `${where} → a code without any scope granted`);
            // a dangerous scope is in the grant only when ticked in this very submission
            for (const resources of after.values()) {
              if (resources.get(NOTES)?.has('notes:delete') && request.scope.includes('notes:delete')) {
                assert.ok(ticked.has('0:notes:delete'), `${where} → notes:delete still granted without being ticked now`);
              }
            }
          }
          count(`consent: ${action} → ${code ? 'code' : error}`);
          await fresh();
        },
      ),
      RUNS * 0.6,
    );
    assert.ok(reached['consent: confirm → code'] && reached['consent: abort → access_denied'], `the fuzzer granted and denied: ${JSON.stringify(reached)}`);
  });
  // ---- second factor -----------------------------------------------------------------------------

  it('second factor: the login completes only with the CSRF token and a current TOTP code or an unused recovery code', async () => {
    const carol = accountIds.get('carol')!;
    const { secret, codes } = await enrolTotp(s.t, 'carol');
    const unused = [...codes];
    const normalizeTotp = (input: string) => input.replace(/[\s-]/g, '');
    const normalizeRecovery = (input: string) => input.toLowerCase().replace(/[\s-]/g, '');
    /** carol's password typed on a fresh sign-in: the second-factor page */
    async function secondFactorStep(): Promise<Interaction> {
      const browser = new Browser();
      const login = await interaction(browser, authUrl('web-app', 'notes:read'), '/login');
      const page = await browser.submit(findForm(login.page, '/login'), { username: 'carol', password: PASSWORD }, undefined, REDIRECT);
      const form = findForm(page, '/second-factor');
      return { jar: browser.jar, uid: login.uid, csrf: form.fields.find((f) => f.name === 'csrf')!.value, page };
    }
    let live = await secondFactorStep();
    const other = await interaction(new Browser(), authUrl('web-app', 'notes:read'), '/login');
    const CODE = /\u0001(totp|next|wrong|rc)\u0001/g;
    async function fillCodes(text: string) {
      const current = await codeOf(secret);
      const values: Record<string, string> = { totp: current, next: await codeOf(secret, 1), wrong: await wrongCodeOf(secret), rc: unused[0] ?? 'none' };
      return text.replace(CODE, (_, k: string) => values[k]!);
    }
    const fields = {
      csrf: valueOf([LIVE_CSRF], [OTHER_CSRF, '']),
      code: field(['\u0001totp\u0001', '\u0001rc\u0001'], ['\u0001wrong\u0001', '\u0001next\u0001', '000000', '12345', '']),
    };
    const valid: Pair[] = [['csrf', { text: LIVE_CSRF }], ['code', { text: '\u0001totp\u0001' }]];
    let failedInARow = 0;
    /** the time step of the last TOTP code accepted: codes of that step and earlier are used up (replay protection) */
    let lastStep = -1;
    const stepNow = () => Math.floor(Date.now() / 30_000);
    await run(
      fc.asyncProperty(
        submission(valid, fields, 1),
        uidChoice,
        fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        async (pairs, uid, cookies) => {
          const filled: Pair[] = [];
          for (const [k, v] of fill(pairs, live.csrf, other.csrf)) filled.push([k, 'text' in v ? { text: await fillCodes(v.text) } : v]);
          const body = serialize(filled);
          const req: Sent = { path: `/interaction/${encodeText(uidFor(uid, live.uid, other.uid))}/second-factor`, body, cookies };
          const where = describeReq(req);
          const at = stepNow();
          const window = new Map<string, number>();
          for (const k of [-1, 0, 1]) window.set(await codeOf(secret, k), at + k);
          const reply = await post(live.jar, req);
          checkCommon(req, reply);
          const resumed = reply.status === 303 && reply.location?.pathname === `/auth/${live.uid}`;
          if (resumed) checkLocation(where, await get(live.jar, reply.location!.href));
          const account = await sessionAccount(live.jar);
          if (!resumed && account === undefined) {
            if (++failedInARow % 40 === 0) {
              const ahead = stepNow() > lastStep ? 0 : stepNow() + 1 > lastStep ? 1 : undefined;
              if (ahead !== undefined) {
                const code = await codeOf(secret, ahead);
                const retry = await post(live.jar, { path: `/interaction/${live.uid}/second-factor`, body: new URLSearchParams({ csrf: live.csrf, code }).toString(), cookies: true });
                assert.ok(retry.status === 303, `the second-factor step is no longer usable after ${where}: ${retry.status} ${retry.text.slice(0, 300)}`);
                lastStep = stepNow() + ahead;
                count('second factor: usable after failures');
                live = await secondFactorStep();
              }
            }
            return;
          }
          const code = one(body, 'code');
          const csrfRight = cookies && uid.kind === 'real' && one(body, 'csrf') === live.csrf;
          assert.ok(resumed && account === carol, `${where} → signed in (${account}) without finishing the second factor`);
          assert.ok(csrfRight && code !== undefined, `${where} → the second factor passed without the CSRF token or one code`);
          const recovery = unused.findIndex((rc) => normalizeRecovery(rc) === normalizeRecovery(code));
          assert.ok(window.has(normalizeTotp(code)) || recovery >= 0, `${where} → the second factor passed with a code neither current nor an unused recovery code`);
          const step = window.get(normalizeTotp(code));
          if (recovery >= 0 && step === undefined) {
            unused.splice(recovery, 1);
            count('second factor: recovery code');
          } else {
            assert.ok(step! > lastStep, `${where} → a TOTP code of a step already used was accepted (replay)`);
            lastStep = step!;
            count('second factor: totp');
          }
          failedInARow = 0;
          live = await secondFactorStep();
        },
      ),
      RUNS * 0.5,
    );
    assert.ok(reached['second factor: totp'] || reached['second factor: usable after failures'], `the fuzzer passed the second factor: ${JSON.stringify(reached)}`);
  });

  // ---- device code entry -----------------------------------------------------------------------------

  it('device: the confirmation, Continue and Cancel only for the xsrf token and a real pending user code', async () => {
    const browser = new Browser();
    const xsrfOf = (page: Page) => findForm(page, '/device').fields.find((f) => f.name === 'xsrf')?.value ?? '';
    const pending: string[] = [];
    const used: string[] = [];
    for (let i = 0; i < 2; i++) pending.push((await startDevice(s.t)).user_code);
    let xsrf = xsrfOf(await browser.go(s.t.url('/device')));
    const otherXsrf = xsrfOf(await new Browser().go(s.t.url('/device')));
    // a code cancelled on its page: used, never accepted again
    {
      const cancelled = (await startDevice(s.t)).user_code;
      const page = await browser.go(s.t.url('/device'), { method: 'POST', body: new URLSearchParams({ xsrf, user_code: cancelled, abort: 'yes' }) });
      assert.match(page.html, /Cancelled/);
      used.push(cancelled);
      xsrf = xsrfOf(await browser.go(s.t.url('/device')));
    }
    // user-code placeholders: the n-th pending code as shown, lowercased, without its dash, spaced out; a used one
    const CODE = /\u0001c(\d)(:\w+)?\u0001/gi;
    const codeValues = ['\u0001c0\u0001', '\u0001c1\u0001', '\u0001c0:lower\u0001', '\u0001c1:bare\u0001', '\u0001c0:spaced\u0001', '\u0001c0:zw\u0001', '\u0001c9\u0001'];
    const fillCode = (text: string) =>
      text.replace(CODE, (_, n: string, how: string | undefined) => {
        const code = n === '9' ? used[0]! : pending[Number(n)]!;
        switch (how?.toLowerCase()) {
          case ':lower': return code.toLowerCase();
          case ':bare': return code.replace('-', '');
          case ':spaced': return ` ${code.split('').join(' ')} `;
          case ':zw': return code.replace('-', '\u200b\u202e');
          default: return code;
        }
      });
    const fields = {
      xsrf: valueOf([LIVE_CSRF], [OTHER_CSRF, '']),
      user_code: field(codeValues, ['BCDF-GHJK', '', '0000-0000']),
      confirm: valueOf(['yes'], ['no', '']),
      abort: valueOf(['yes'], ['']),
    };
    const valid: Pair[] = [['xsrf', { text: LIVE_CSRF }], ['user_code', { text: codeValues[0]! }]];
    const optional = fc.oneof({ weight: 5, arbitrary: fc.constant<Pair[]>([]) }, { weight: 1, arbitrary: fc.constantFrom<Pair[]>([['confirm', { text: 'yes' }]], [['abort', { text: 'yes' }]]) });
    let failedInARow = 0;

    async function consumed(code: string) {
      pending.splice(pending.indexOf(code), 1);
      used.unshift(code);
      pending.push((await startDevice(s.t)).user_code);
      xsrf = xsrfOf(await browser.go(s.t.url('/device')));
    }

    await run(
      fc.asyncProperty(
        fc.tuple(submission(valid, fields), optional).map(([a, b]) => [...a, ...b]),
        fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        async (pairs, cookies) => {
          const filled = fill(pairs, xsrf, otherXsrf).map(([k, v]): Pair => [k, 'text' in v ? { text: fillCode(v.text) } : v]);
          const body = serialize(filled);
          const req: Sent = { path: '/device', body, cookies };
          const where = describeReq(req);
          const reply = await post(browser.jar, req);
          checkCommon(req, reply);
          const shown = reply.status === 200 && /name="confirm"/.test(reply.text);
          const continued = reply.status >= 300 && reply.status < 400 && reply.location?.pathname.startsWith('/interaction/') === true;
          const cancelled = /Cancelled: the device was not connected/.test(reply.text);
          if (!shown && !continued && !cancelled) {
            // the page shown again carries a new xsrf token (oidc-provider makes one per rendering): a browser posts that one next
            if (cookies && /name="xsrf"/.test(reply.text)) xsrf = xsrfOf({ url: s.t.url('/device'), status: 200, html: reply.text, headers: reply.headers, forms: parseForms(reply.text, s.t.url('/device')) });
            if (++failedInARow % 40 === 0) {
              const page = await browser.go(s.t.url('/device'), { method: 'POST', body: new URLSearchParams({ xsrf, user_code: pending[0]! }) });
              assert.match(page.html, /name="confirm"/, `the device page is no longer usable after ${where}`);
              count('device: usable after failures');
            }
            return;
          }
          failedInARow = 0;
          const params = new URLSearchParams(body);
          assert.ok(cookies && params.getAll('xsrf').length === 1 && params.get('xsrf') === xsrf, `${where} → accepted without the xsrf token`);
          const typed = params.getAll('user_code');
          const match = typed.length === 1 ? pending.find((p) => normalizeUserCode(p) === normalizeUserCode(typed[0]!)) : undefined;
          assert.ok(match, `${where} → accepted a user code that is not pending (pending: ${pending.join(', ')})`);
          if (shown) {
            assert.ok(!params.has('confirm') && !params.has('abort') || params.get('confirm') === '' && !params.has('abort'), `${where} → the confirmation page for a Continue or Cancel`);
            count('device: confirmation shown');
          } else {
            assert.ok(continued ? params.get('confirm') : params.get('abort'), `${where} → ${continued ? 'continued' : 'cancelled'} without asking`);
            count(`device: ${continued ? 'continued' : 'cancelled'}`);
            await consumed(match);
          }
        },
      ),
      RUNS * 0.7,
    );
    assert.ok(reached['device: confirmation shown'] && reached['device: continued'] && reached['device: cancelled'], `the fuzzer reached every device step: ${JSON.stringify(reached)}`);
  });

  // ---- tool-call approval ----------------------------------------------------------------------------

  it('tool approval: a call is decided only by its person, with the CSRF token, as chosen', async () => {
    const store = s.t.server.store;
    const alice = accountIds.get('alice')!;
    const bob = accountIds.get('bob')!;
    const person = new Browser();
    await authorize(person, authUrl('web-app', 'notes:read'), REDIRECT, PASSWORD);
    /** a pending call of `accountId`'s, whose summary carries markup the page must escape */
    async function pendingCall(accountId: string, n: number): Promise<string> {
      const at = Date.now();
      const id = b64url(randomBytes(24));
      await store.toolApprovals.create({
        id, resource: NOTES, tool: 'delete_note', argumentsDigest: b64url(randomBytes(32)), summary: `Delete the note "<script>xss${1000 + n}</script>" and '"><img src=x onerror=xss${2000 + n}>`,
        clientId: 'web-app', accountId, status: 'pending', createdAt: at, expiresAt: at + 600_000,
      });
      return id;
    }
    async function pageOf(id: string) {
      const page = await person.go(s.t.url(`/approvals/${id}`));
      checkPage(page);
      assert.doesNotMatch(page.html, /<script>xss|"><img src=x onerror/, 'the approval page shows its summary unescaped');
      return { id, csrf: findForm(page, `/approvals/${id}`).fields.find((f) => f.name === 'csrf')!.value };
    }
    let made = 0;
    let live = await pageOf(await pendingCall(alice, made++));
    const other = await pageOf(await pendingCall(alice, made++));
    const bobs = await pendingCall(bob, made++);
    const fields = {
      csrf: valueOf([LIVE_CSRF], [OTHER_CSRF, '']),
      decision: field(['approve', 'refuse'], ['deny', 'APPROVE', 'approved', '']),
      code: valueOf(['123456'], ['']),
    };
    const valid: Pair[] = [['csrf', { text: LIVE_CSRF }], ['decision', { text: 'approve' }]];
    const idChoice = fc.oneof(
      { weight: 12, arbitrary: fc.constant('live') },
      { weight: 1, arbitrary: fc.constantFrom('other', 'bob') },
      { weight: 1, arbitrary: hostileText.map((t) => `junk:${t}`) },
    );
    const statusOf = async (id: string) => (await store.toolApprovals.get(id))?.status;

    await run(
      fc.asyncProperty(
        submission(valid, fields),
        idChoice,
        fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        async (pairs, which, cookies) => {
          const id = which === 'live' ? live.id : which === 'other' ? other.id : which === 'bob' ? bobs : which.slice(5);
          const body = serialize(fill(pairs, live.csrf, other.csrf));
          const req: Sent = { path: `/approvals/${encodeText(id)}`, body, cookies };
          const where = describeReq(req);
          const reply = await post(person.jar, req);
          checkCommon(req, reply);
          assert.equal(await statusOf(bobs), 'pending', `${where} → bob's call decided by alice`);
          assert.equal(await statusOf(other.id), 'pending', `${where} → another call decided`);
          const status = await statusOf(live.id);
          if (status === 'pending') return;
          const decision = one(body, 'decision');
          assert.ok(cookies && which === 'live' && one(body, 'csrf') === live.csrf, `${where} → the call was decided (${status}) without its CSRF token`);
          assert.equal(status, decision === 'approve' ? 'approved' : decision === 'refuse' ? 'denied' : 'neither', `${where} → decided ${status}, not as chosen`);
          count(`approval: ${status}`);
          live = await pageOf(await pendingCall(alice, made++));
        },
      ),
      RUNS * 0.8,
    );
    assert.ok(reached['approval: approved'] && reached['approval: denied'], `the fuzzer approved and refused: ${JSON.stringify(reached)}`);
  });

  // ---- connected apps ------------------------------------------------------------------------------

  it('connected apps: only the person\'s own grant, the one named, with the CSRF token, is revoked', async () => {
    const alice = accountIds.get('alice')!;
    const store = s.t.server.store;
    let person = new Browser();
    const grantsOfAlice = async () => (await store.grants.list({ accountId: alice })).map((g) => g.grantId).sort();
    /** alice's apps page: its CSRF token; alice has at least two grants */
    async function appsPage() {
      for (;;) {
        const records = await store.grants.list({ accountId: alice });
        if (records.length >= 2) break;
        // a consent for a client alice has no grant with makes a new grant
        const clientId = ['web-app', 'confidential-web', 'xss-app'].find((c) => !records.some((r) => r.clientId === c))!;
        await authorize(person, authUrl(clientId, 'notes:read', { prompt: 'consent' }), REDIRECT, PASSWORD);
      }
      const page = await person.go(s.t.url('/account/apps'));
      checkPage(page);
      return findForm(page, '/revoke').fields.find((f) => f.name === 'csrf')!.value;
    }
    // alice signs in in this browser (her grants from the consent test stay: hers to revoke too)
    await authorize(person, authUrl('web-app', 'notes:read', { prompt: 'consent' }), REDIRECT, PASSWORD);
    let csrf = await appsPage();
    // bob's grant, and bob's own token for his page
    const bob = new Browser();
    await authorize(bob, authUrl('web-app', 'notes:read'), REDIRECT, PASSWORD, { username: 'bob' });
    const bobGrant = (await store.grants.list({ accountId: accountIds.get('bob')! }))[0]!.grantId;
    const bobCsrf = findForm(await bob.go(s.t.url('/account/apps')), '/revoke').fields.find((f) => f.name === 'csrf')!.value;
    const GRANT = /\u0001g(\d)\u0001/g;
    let current: string[] = await grantsOfAlice();
    const fillGrant = (text: string) => text.replace(GRANT, (_, n: string) => (n === '9' ? bobGrant : current[Number(n)] ?? 'gone'));
    const fields = { csrf: valueOf([LIVE_CSRF], [OTHER_CSRF, '']), grant: field(['\u0001g0\u0001', '\u0001g1\u0001'], ['\u0001g9\u0001', 'unknown', '']) };
    const valid: Pair[] = [['csrf', { text: LIVE_CSRF }], ['grant', { text: '\u0001g0\u0001' }]];
    let failedInARow = 0;
    const revoke = async (where: string) => {
      const reply = await post(person.jar, { path: '/account/apps/revoke', body: serialize(fill(valid, csrf, bobCsrf).map(([k, v]): Pair => [k, 'text' in v ? { text: fillGrant(v.text) } : v])), cookies: true });
      assert.ok(reply.status === 303 && reply.location?.search === '?done=revoked', `the apps page is no longer usable after ${where}: ${reply.status} ${reply.text.slice(0, 300)}`);
      count('apps: usable after failures');
      csrf = await appsPage();
    };

    await run(
      fc.asyncProperty(
        submission(valid, fields),
        fc.oneof({ weight: 12, arbitrary: fc.constant('/account/apps/revoke') }, { weight: 1, arbitrary: fc.constant('/account/apps/revoke-all') }),
        fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        async (pairs, path, cookies) => {
          current = await grantsOfAlice();
          const body = serialize(fill(pairs, csrf, bobCsrf).map(([k, v]): Pair => [k, 'text' in v ? { text: fillGrant(v.text) } : v]));
          const req: Sent = { path, body, cookies };
          const where = describeReq(req);
          const reply = await post(person.jar, req);
          checkCommon(req, reply);
          assert.ok(await store.grants.get(bobGrant), `${where} → bob's grant was revoked by alice`);
          const after = await grantsOfAlice();
          const removed = current.filter((g) => !after.includes(g));
          const csrfRight = cookies && one(body, 'csrf') === csrf;
          const signedOut = /Signed out of all apps/.test(reply.text);
          if (removed.length || signedOut) {
            assert.ok(csrfRight, `${where} → revoked ${removed.join(', ')} without the CSRF token`);
            if (path.endsWith('/revoke')) {
              assert.deepEqual(removed, [one(body, 'grant')], `${where} → revoked ${removed.join(', ')}, not the one grant named`);
              count('apps: revoked one');
            } else {
              assert.deepEqual(after, [], `${where} → signed out of all apps, but grants remain`);
              assert.equal(await sessionAccount(person.jar), undefined, `${where} → signed out of all apps, but still signed in`);
              count('apps: signed out of all');
              person = new Browser();
              await authorize(person, authUrl('web-app', 'notes:read', { prompt: 'consent' }), REDIRECT, PASSWORD);
            }
            failedInARow = 0;
            csrf = await appsPage();
          } else if (++failedInARow % 40 === 0) {
            await revoke(where);
          }
        },
      ),
      RUNS * 0.5,
    );
    await revoke('the last run');
    assert.ok(reached['apps: revoked one'], `the fuzzer revoked: ${JSON.stringify(reached)}`);
  });
});
