/**
 * The OIDC connection on the Redis store: the pending request (state, nonce, PKCE verifier)
 * and the hand-off back to the interaction live in Redis, each used once — the sign-in goes
 * through, the same answer replayed is refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../helpers/browser-driver.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { accountIdFor } from '../../src/connections/provision.js';
import { startUpstream, UPSTREAM_SECRET, type Upstream } from './oidc-upstream.js';
import { atUpstream, consentAndRedeem, titleOf, toUpstream } from './oidc-flow.js';

describe('an OIDC connection on Redis', { timeout: 120_000 }, () => {
  let redis: RedisServer;
  let upstream: Upstream;
  let t: TestServer;

  before(async () => {
    [redis, upstream] = await Promise.all([startRedis(), startUpstream()]);
    upstream.people.set('ada', { preferred_username: 'ada' });
    t = await startServer({
      store: 'redis',
      redisUrl: redis.url,
      config: { connections: [{ kind: 'oidc', id: 'corp', name: 'Corp SSO', issuer: upstream.issuer, clientId: 'mcp-authz', clientSecret: UPSTREAM_SECRET }] },
    });
    await upstream.register([t.url('/connections/corp/callback')]);
  });
  after(async () => {
    await t?.stop();
    await upstream?.stop();
    await redis?.stop();
  });

  test('signs in once; the answer and the hand-off replayed are refused', async () => {
    const browser = new Browser();
    const { page, request } = await toUpstream(browser, t, 'corp');
    const answer = (await atUpstream(browser, page, 'ada', { stopAt: t.url('/connections/corp/callback') })).url;
    const done = (await browser.go(answer, {}, `${t.issuer}/interaction/`)).url;
    assert.match(done, /\/connection\/corp\/done\?handoff=/);
    await consentAndRedeem(browser, await browser.go(done), request);
    assert.equal((await t.server.store.accounts.findById(accountIdFor('corp', 'ada')))?.username, 'ada');

    for (const again of [answer, done]) {
      const replayed = await browser.go(again);
      assert.equal(replayed.status, 400, again);
      assert.equal(titleOf(replayed), 'Sign-in expired');
    }
  });
});
