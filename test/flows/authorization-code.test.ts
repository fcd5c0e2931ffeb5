/**
 * Authorization code + PKCE, end to end over HTTP with openid-client, on SQLite and Redis:
 * S256 required, plain refused, no implicit/hybrid/password, RFC 9207 `iss`, RFC 9068 JWT
 * access tokens bound to the requested MCP server, refresh rotation for public clients.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, authorize, findForm } from '../helpers/browser-driver.js';
import { serverFixture, STORE_KINDS } from '../helpers/harness.js';
import { NOTES, CALENDAR, PASSWORD, REDIRECT, SECRET } from '../helpers/fixtures.js';
import { client, jwt } from '../helpers/rp.js';
import { authorizationRequest } from '../helpers/flows.js';

for (const kind of STORE_KINDS) {
  describe(`authorization code flow (${kind})`, () => {
    // replays here are meant as theft: no reuse grace window (test/flows/refresh-reuse.test.ts covers it)
    const s = serverFixture(kind, { config: { refreshTokens: { reuseGraceWindow: 0 } } });

    async function codeFlow(clientId: string, params: Record<string, string>, options: Parameters<typeof authorize>[4] = {}) {
      const { config, verifier, state, url } = await authorizationRequest(s.t, clientId, params);
      const callback = await authorize(new Browser(), url, REDIRECT, PASSWORD, options);
      return { config, verifier, state, callback };
    }

    it('advertises only what it does: code, S256, RFC 9207 iss', async () => {
      const meta = (await (await fetch(s.t.url('/.well-known/oauth-authorization-server'))).json()) as Record<string, unknown>;
      assert.equal(meta.issuer, s.t.issuer);
      assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
      assert.deepEqual(meta.response_types_supported, ['code']);
      assert.equal(meta.authorization_response_iss_parameter_supported, true);
      const grants = meta.grant_types_supported as string[];
      for (const g of ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code']) assert.ok(grants.includes(g), g);
      for (const g of ['implicit', 'password']) assert.ok(!grants.includes(g), g);
      const oidc = (await (await fetch(s.t.url('/.well-known/openid-configuration'))).json()) as Record<string, unknown>;
      assert.equal(oidc.issuer, s.t.issuer);
    });

    it('issues an RFC 9068 JWT for the requested MCP server, with iss in the response', async () => {
      const { config, verifier, state, callback } = await codeFlow('web-app', { scope: 'notes:read notes:write', resource: NOTES });
      assert.equal(callback.searchParams.get('iss'), s.t.issuer);
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
      const at = jwt(tokens.access_token);
      assert.equal(at.header.typ, 'at+jwt');
      assert.equal(at.header.alg, 'ES256');
      assert.equal(at.payload.aud, NOTES);
      assert.equal(at.payload.iss, s.t.issuer);
      assert.equal(at.payload.client_id, 'web-app');
      assert.deepEqual(String(at.payload.scope).split(' ').sort(), ['notes:read', 'notes:write']);
      assert.ok(typeof at.payload.sub === 'string' && at.payload.sub !== 'alice', 'sub is the account id, not the username');
      assert.ok(Number(at.payload.exp) - Number(at.payload.iat) <= 600, 'the resource lifetime applies');
      assert.equal(tokens.scope?.split(' ').sort().join(' '), 'notes:read notes:write');
      assert.ok(tokens.refresh_token, 'a client allowed refresh_token gets one');
    });

    it('treats resource indicators canonically (case, default port, trailing slash)', async () => {
      const odd = 'HTTPS://Notes.Example.com:443/mcp/';
      const { config, verifier, state, callback } = await codeFlow('web-app', { scope: 'notes:read', resource: odd });
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: odd });
      assert.equal(jwt(tokens.access_token).payload.aud, NOTES);
    });

    it('compares resource canonically between authorize, code exchange and refresh, and through aliases', async () => {
      const variants = ['HTTPS://Notes.Example.com:443/mcp/', 'https://notes.example.com/mcp/', 'https://NOTES.example.com'];
      for (const [i, atAuthorize] of variants.entries()) {
        const atToken = variants[(i + 1) % variants.length]!;
        const { config, verifier, state, callback } = await codeFlow('web-app', { scope: 'notes:read', resource: atAuthorize });
        const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: atToken });
        assert.equal(jwt(tokens.access_token).payload.aud, NOTES, `${atAuthorize} then ${atToken}`);
        const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!, { resource: variants[(i + 2) % variants.length]! });
        assert.equal(jwt(refreshed.access_token).payload.aud, NOTES);
      }
    });

    it('without resource: the client’s only MCP server, else invalid_target saying what to send', async () => {
      // confidential-web may use only Notes
      const only = await codeFlow('confidential-web', { scope: 'notes:read' });
      const tokens = await client.authorizationCodeGrant(only.config, only.callback, { pkceCodeVerifier: only.verifier, expectedState: only.state });
      assert.equal(jwt(tokens.access_token).payload.aud, NOTES);
      // web-app may use Notes and Calendar: it has to say which
      const { url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read' });
      const page = await new Browser().go(url, {}, REDIRECT);
      const callback = new URL(page.url);
      assert.equal(callback.searchParams.get('error'), 'invalid_target');
      assert.match(callback.searchParams.get('error_description') ?? '', /resource parameter.*notes\.example\.com\/mcp/);
    });

    it('grants only the ticked scopes; a dangerous scope is never preselected', async () => {
      const { config, verifier, state, callback } = await codeFlow('web-app', { scope: 'notes:read notes:delete', resource: NOTES });
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
      assert.equal(jwt(tokens.access_token).payload.scope, 'notes:read');
    });

    it('a request naming no scope gets the server’s defaultScopes after consent, never access_denied', async () => {
      for (const params of [{ resource: NOTES }, { resource: NOTES, scope: 'openid' }] as Record<string, string>[]) {
        const { config, verifier, state, callback } = await codeFlow('web-app', params);
        assert.equal(callback.searchParams.get('error'), null, JSON.stringify(params));
        const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
        assert.equal(jwt(tokens.access_token).payload.scope, 'notes:read', JSON.stringify(params));
        assert.equal(jwt(tokens.access_token).payload.aud, NOTES);
      }
    });

    it('step-up keeps what was granted and asks only about the new scopes; refresh keeps the scopes', async () => {
      const browser = new Browser();
      const first = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read', resource: NOTES });
      const cb1 = await authorize(browser, first.url, REDIRECT, PASSWORD);
      await client.authorizationCodeGrant(first.config, cb1, { pkceCodeVerifier: first.verifier, expectedState: first.state });

      const second = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read notes:write', resource: NOTES });
      const page = await browser.go(second.url, {}, REDIRECT);
      const consent = findForm(page, '/confirm');
      assert.match(page.html, /Already allowed/, 'the granted scope is shown as such');
      assert.equal((page.html.match(/ disabled/g) ?? []).length, 1, 'only the granted scope is not asked again');
      const done = await browser.submit(consent, {}, undefined, REDIRECT);
      const tokens = await client.authorizationCodeGrant(second.config, new URL(done.url), { pkceCodeVerifier: second.verifier, expectedState: second.state });
      assert.equal(jwt(tokens.access_token).payload.scope, 'notes:read notes:write');
      const refreshed = await client.refreshTokenGrant(second.config, tokens.refresh_token!);
      assert.equal(jwt(refreshed.access_token).payload.scope, 'notes:read notes:write', 'a refresh without scope keeps the grant’s scopes');
    });

    it('carries only scopes the server defines and the client may have', async () => {
      // confidential-web may only use Notes; asking for a scope Notes does not define yields nothing of it
      const { config, verifier, state, callback } = await codeFlow('confidential-web', { scope: 'notes:read calendar:read made:up', resource: NOTES });
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
      assert.equal(jwt(tokens.access_token).payload.scope, 'notes:read');
    });

    it('a pushed authorization request (PAR) with a non-canonical resource is canonicalised like /auth: its grant refreshes', async () => {
      const verifier = client.randomPKCECodeVerifier();
      const pushed = await fetch(s.t.url('/request'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          client_id: 'web-app',
          response_type: 'code',
          redirect_uri: REDIRECT,
          scope: 'notes:read',
          resource: 'HTTPS://Notes.Example.com:443/mcp/',
          code_challenge: await client.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state: 'par-state',
        }),
      });
      assert.equal(pushed.status, 201, await pushed.clone().text());
      const { request_uri: requestUri } = (await pushed.json()) as { request_uri: string };
      const url = s.t.url(`/auth?${new URLSearchParams({ client_id: 'web-app', request_uri: requestUri })}`);
      const callback = await authorize(new Browser(), url, REDIRECT, PASSWORD);
      const form = (body: Record<string, string>) => ({
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: 'web-app', ...body }),
      });
      const code = await fetch(
        s.t.url('/token'),
        form({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }),
      );
      const tokens = (await code.json()) as { access_token: string; refresh_token: string };
      assert.equal(code.status, 200, JSON.stringify(tokens));
      assert.equal(jwt(tokens.access_token).payload.aud, NOTES);
      for (const params of [{}, { resource: NOTES }] as Record<string, string>[]) {
        const refreshed = await fetch(s.t.url('/token'), form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, ...params }));
        const body = (await refreshed.json()) as { access_token: string; refresh_token: string };
        assert.equal(refreshed.status, 200, JSON.stringify(body));
        assert.equal(jwt(body.access_token).payload.aud, NOTES);
        tokens.refresh_token = body.refresh_token;
      }
    });

    it('answers invalid_target for an unknown resource and for a resource the client may not use', async () => {
      for (const [clientId, resource] of [
        ['web-app', 'https://unknown.example.com/mcp'],
        ['confidential-web', CALENDAR],
        // RFC 8707 §2: no fragment; and no userinfo, which would otherwise canonicalise to the server
        ['web-app', `${NOTES}#fragment`],
        ['web-app', `${NOTES}#`],
        ['web-app', NOTES.replace('https://', 'https://user:pass@')],
        ['web-app', NOTES.replace('https://', 'https://@')],
      ] as const) {
        const { url } = await authorizationRequest(s.t, clientId, { scope: 'notes:read', resource });
        const page = await new Browser().go(url, {}, REDIRECT);
        const callback = new URL(page.url);
        assert.equal(callback.searchParams.get('error'), 'invalid_target', `${clientId} → ${resource}`);
        assert.equal(callback.searchParams.get('iss'), s.t.issuer, 'iss on error responses too');
      }
    });

    it('accepts any port of a registered loopback redirect URI, nothing else', async () => {
      // xss-app registers http://127.0.0.1:9/callback and no application_type: loopback-only → native
      const base = { client_id: 'xss-app', response_type: 'code', scope: 'notes:read', resource: NOTES, code_challenge: 'a'.repeat(43), code_challenge_method: 'S256' };
      const other = 'http://127.0.0.1:54321/callback';
      const ok = await new Browser().go(s.t.url(`/auth?${new URLSearchParams({ ...base, redirect_uri: other })}`), {}, other);
      assert.ok(ok.url.startsWith(other) || ok.forms.some((f) => f.action.endsWith('/login')), `another port is accepted (${ok.status})`);
      for (const bad of ['http://127.0.0.1:54321/other', 'http://localhost:54321/callback', 'https://127.0.0.1:9/callback']) {
        const page = await new Browser().go(s.t.url(`/auth?${new URLSearchParams({ ...base, redirect_uri: bad })}`), {}, bad);
        assert.equal(page.status, 400, `${bad} is refused`);
        assert.ok(!page.url.startsWith(bad), 'an unregistered redirect URI is never redirected to');
        assert.match(page.headers.get('content-type') ?? '', /html/, 'a page, not a redirect');
      }
    });

    it('never redirects to an unregistered redirect URI: errors found before it is validated are a page, later errors go only to the registered one', async () => {
      const open = (params: Record<string, string>) =>
        fetch(s.t.url(`/auth?${new URLSearchParams(params)}`), { redirect: 'manual', headers: { accept: 'text/html' } });
      const base = { client_id: 'web-app', response_type: 'code', scope: 'notes:read', resource: NOTES, code_challenge: 'a'.repeat(43), code_challenge_method: 'S256', state: 'xyz' };
      const evil = 'https://evil.example.com/callback';
      const pages: [string, Record<string, string>, string?][] = [
        ['an unregistered https redirect URI', { ...base, redirect_uri: evil }, 'invalid_redirect_uri'],
        ['the registered URI with a query added', { ...base, redirect_uri: `${REDIRECT}?next=${encodeURIComponent(evil)}` }, 'invalid_redirect_uri'],
        ['the registered loopback URI with user info', { ...base, redirect_uri: 'http://evil@127.0.0.1:9/callback' }, 'invalid_redirect_uri'],
        ['an unregistered URI and another error besides', { ...base, redirect_uri: evil, code_challenge_method: 'plain' }],
        ['an unknown client', { ...base, client_id: 'nobody', redirect_uri: evil }, 'invalid_client'],
        ['no client at all', { response_type: 'code', redirect_uri: evil, state: 'xyz' }],
      ];
      for (const [label, params, error] of pages) {
        const res = await open(params);
        const html = await res.text();
        assert.equal(res.status, 400, `${label}: ${res.status} ${res.headers.get('location') ?? ''}`);
        assert.equal(res.headers.get('location'), null, `${label}: never redirected`);
        assert.match(res.headers.get('content-type') ?? '', /^text\/html/, `${label}: a page`);
        assert.match(html, /This request cannot be completed/, label);
        if (error) assert.match(html, new RegExp(`\\(${error}\\)`), `${label}: names ${error}`);
        assert.ok(!html.includes('http-equiv="refresh"'), `${label}: no meta refresh`);
      }
      // once the redirect URI is validated, an error goes to it (the registered one, or a port of a registered loopback one)
      for (const redirectUri of [REDIRECT, 'http://127.0.0.1:54329/callback']) {
        const res = await open({ ...base, redirect_uri: redirectUri, code_challenge_method: 'plain' });
        assert.equal(res.status, 303, redirectUri);
        const location = new URL(res.headers.get('location') ?? '');
        assert.equal(`${location.origin}${location.pathname}`, redirectUri);
        assert.equal(location.searchParams.get('error'), 'invalid_request');
        assert.equal(location.searchParams.get('iss'), s.t.issuer);
        assert.equal(location.searchParams.get('state'), 'xyz');
      }
    });

    it('requires PKCE with S256 and refuses plain', async () => {
      const base = { client_id: 'confidential-web', response_type: 'code', redirect_uri: REDIRECT, scope: 'notes:read', resource: NOTES, state: 'xyz' };
      const cases: Record<string, string>[] = [{}, { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }, { code_challenge: 'a'.repeat(43) + '!' }];
      for (const extra of cases) {
        const page = await new Browser().go(s.t.url(`/auth?${new URLSearchParams({ ...base, ...extra })}`), {}, REDIRECT);
        const callback = new URL(page.url);
        assert.equal(callback.searchParams.get('error'), 'invalid_request', JSON.stringify(extra));
        assert.equal(callback.searchParams.get('state'), 'xyz');
        assert.equal(callback.searchParams.get('iss'), s.t.issuer, 'RFC 9207: iss on every authorization response');
      }
    });

    it('refuses implicit and hybrid response types and the password grant', async () => {
      for (const responseType of ['token', 'id_token token', 'code id_token']) {
        const page = await new Browser().go(
          s.t.url(`/auth?${new URLSearchParams({ client_id: 'web-app', response_type: responseType, redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', code_challenge: 'a'.repeat(43), code_challenge_method: 'S256' })}`),
          {},
          REDIRECT,
        );
        const error = page.url.startsWith(REDIRECT) ? new URL(page.url.replace('#', '?')).searchParams.get('error') : String(page.status);
        assert.ok(error === 'unsupported_response_type' || error === 'invalid_request' || error === 'unauthorized_client', `${responseType}: ${error}`);
      }
      const res = await fetch(s.t.url('/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`confidential-web:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: PASSWORD }),
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'unsupported_grant_type');
    });

    it('refuses a wrong code_verifier without spending the code; the right one then gets tokens, once', async () => {
      const { config, verifier, state, callback } = await codeFlow('web-app', { scope: 'notes:read', resource: NOTES });
      await assert.rejects(
        client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: state }, { resource: NOTES }),
        (err: Error & { error?: string }) => err.error === 'invalid_grant',
      );
      // the failed attempt did not consume the code (PKCE is checked before the code is spent): the right verifier still works
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
      assert.equal(jwt(tokens.access_token).payload.aud, NOTES);
      // a successful exchange does spend it: reuse is refused
      await assert.rejects(
        client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES }),
        (err: Error & { error?: string }) => err.error === 'invalid_grant',
      );
    });

    it('exchanges one code exactly once under concurrency', async () => {
      const { config, verifier, state, callback } = await codeFlow('web-app', { scope: 'notes:read', resource: NOTES });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, () => client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES })),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { error?: string }).error, 'invalid_grant');
    });

    it('rotates refresh tokens for public clients; a replayed one revokes the grant', async () => {
      const { config, verifier, state, callback } = await codeFlow('web-app', { scope: 'notes:read', resource: NOTES });
      const first = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: NOTES });
      const second = await client.refreshTokenGrant(config, first.refresh_token!, { resource: NOTES });
      assert.notEqual(second.refresh_token, first.refresh_token, 'rotated');
      assert.equal(jwt(second.access_token).payload.aud, NOTES, 'still bound to the server');
      assert.equal(jwt(second.access_token).payload.scope, 'notes:read', 'same scopes');
      // refresh without resource keeps the grant's resource
      const third = await client.refreshTokenGrant(config, second.refresh_token!);
      assert.equal(jwt(third.access_token).payload.aud, NOTES);
      await assert.rejects(client.refreshTokenGrant(config, first.refresh_token!), (err: Error & { error?: string }) => err.error === 'invalid_grant');
      // the replay revoked the whole grant: the newest refresh token is dead too
      await assert.rejects(client.refreshTokenGrant(config, third.refresh_token!), (err: Error & { error?: string }) => err.error === 'invalid_grant');
    });

    it('denies cleanly when the person refuses', async () => {
      const { callback } = await codeFlow('web-app', { scope: 'notes:read', resource: NOTES }, { deny: true });
      assert.equal(callback.searchParams.get('error'), 'access_denied');
      assert.equal(callback.searchParams.get('iss'), s.t.issuer);
    });

    it('refuses a wrong password without saying which half was wrong', async () => {
      const { url } = await authorizationRequest(s.t, 'web-app', { scope: 'notes:read', resource: NOTES });
      const texts: string[] = [];
      for (const [username, password] of [
        ['alice', 'wrong password'],
        ['nobody', PASSWORD],
      ] as const) {
        const browser = new Browser();
        const page = await browser.go(url, {}, REDIRECT);
        const login = page.forms.find((f) => f.action.endsWith('/login'))!;
        const after = await browser.submit(login, { username, password });
        assert.equal(after.status, 401);
        texts.push(after.html.match(/Incorrect[^<]*/)?.[0] ?? '');
      }
      assert.ok(texts[0]);
      assert.equal(texts[0], texts[1]);
    });
  });
}
