/**
 * The device flow's consent, as a person uses it: the consent page shows the device's
 * client and user code again, and wrong user codes can be tried only a few times.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { Browser, findForm } from '../helpers/browser-driver.js';
import { PASSWORD } from '../helpers/fixtures.js';
import { pollDevice, startDevice } from '../helpers/flows.js';

describe('device flow consent', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ store: 'sqlite', config: { rateLimits: { userCodesPerSource: { max: 3, window: 900 } } } });
  });
  after(() => t?.stop());

  test('the consent page names the device client and shows its user code', async () => {
    const da = await startDevice(t);
    const browser = new Browser();
    let page = await browser.go(t.url('/device'));
    page = await browser.submit(findForm(page, '/device'), { user_code: da.user_code });
    page = await browser.submit(findForm(page, '/device'), {}, { name: 'confirm', value: 'yes' });
    page = await browser.submit(findForm(page, '/login'), { username: 'alice', password: PASSWORD });
    assert.match(page.html, /Living-room TV/);
    assert.match(page.html, new RegExp(`<p class="user-code" aria-label="Device code">${da.user_code}</p>`));
    assert.match(page.html, /Only continue if you started this on your own device/);
    await browser.submit(findForm(page, '/confirm'));
    const polled = await pollDevice(t, da.device_code);
    assert.equal(polled.status, 200);
    assert.ok(polled.body.access_token);
  });

  test('wrong user codes can be tried only a few times: then 429 with Retry-After, even for a right code', async () => {
    const da = await startDevice(t);
    const browser = new Browser();
    for (let i = 0; i < 3; i++) {
      const page = await browser.go(t.url('/device'));
      const wrong = await browser.submit(findForm(page, '/device'), { user_code: `BCDF-GHJ${'KLM'[i]}` });
      assert.equal(wrong.status, 400, `wrong code ${i + 1} is refused on the page`);
    }
    const page = await browser.go(t.url('/device'));
    const res = await fetch(findForm(page, '/device').action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: browser.jar.header(t.url('/device')), accept: 'text/html' },
      body: new URLSearchParams({ user_code: da.user_code, xsrf: String(findForm(page, '/device').fields.find((f) => f.name === 'xsrf')?.value ?? '') }),
    });
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    assert.match(await res.text(), /Too many wrong codes/);
    assert.ok(t.logs.some((l) => l.event === 'rate_limit.hit' && l.limit === 'userCodesPerSource' && l.key === 'source'));
  });
});
