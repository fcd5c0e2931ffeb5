/**
 * Which responses get the short header set of an API answer (src/http/security-headers.ts): its
 * own `isJson` check of the Content-Type against koa's `response.is('json')`, which it stands in
 * for, on the types the server sends and on awkward spellings; and over real HTTP, a token
 * response's headers next to a JWKS's and a page's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Koa from 'koa';
import { isJson, JSON_CSP } from '../../src/http/security-headers.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { NOTES, SECRET } from '../helpers/fixtures.js';

const TYPES = [
  '',
  'application/json',
  'application/json; charset=utf-8',
  'application/json;charset=UTF-8',
  'Application/JSON',
  ' application/json ; charset=utf-8',
  'application/jwk-set+json',
  'application/problem+json',
  'application/token-introspection+jwt',
  'application/jwt',
  'application/json-seq',
  'application/jsonx',
  'text/json',
  'text/html; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'json',
  'application/json x',
];

describe('isJson', () => {
  it('answers as koa response.is("json") does', () => {
    const app = new Koa();
    for (const type of TYPES) {
      const ctx = app.createContext({ headers: {}, socket: {} } as never, { getHeader: () => undefined, setHeader() {}, removeHeader() {} } as never);
      ctx.response.get = ((field: string) => (field.toLowerCase() === 'content-type' ? type : '')) as never;
      assert.equal(isJson(type), ctx.response.is('json') === 'json', JSON.stringify(type));
    }
    assert.equal(isJson(undefined), false, 'no Content-Type');
  });
});

describe('security headers by response type', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ store: 'sqlite' });
  });
  after(() => t?.stop());

  it('a token response gets the short set, a JWKS and a page the full one', async () => {
    const token = await fetch(t.url('/token'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES }),
    });
    assert.equal(token.status, 200);
    assert.equal(token.headers.get('content-security-policy'), JSON_CSP);
    assert.equal(token.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(token.headers.get('permissions-policy'), null);

    const jwks = await fetch(t.url('/jwks'));
    assert.match(jwks.headers.get('content-type') ?? '', /jwk-set\+json/);
    assert.notEqual(jwks.headers.get('content-security-policy'), JSON_CSP);
    assert.ok(jwks.headers.get('permissions-policy'));

    const page = await fetch(t.url('/device'), { headers: { accept: 'text/html' } });
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  });
});
