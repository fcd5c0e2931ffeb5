/**
 * Set-up A: the authorization server on its own TLS listener (node:https, a certificate for
 * localhost from a CA made for the test), issuer https://localhost:<port>, in Chromium trusting
 * that certificate. Proves Secure cookies, the __Host- CSRF cookie and HSTS on a real https origin.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { httpsChecks } from './checks.js';
import { launchTrustingBrowser, makePki, requireTools, startDirectHttps, type Pki, type RunningServer } from './support.js';

describe('https: the server on its own TLS listener', { timeout: 90_000 }, () => {
  let pki: Pki | undefined;
  let running: RunningServer | undefined;
  let browser: Browser | undefined;

  before(async () => {
    requireTools();
    pki = makePki();
    running = await startDirectHttps(pki);
    browser = await launchTrustingBrowser(pki);
  });

  after(async () => {
    await browser?.close();
    await running?.stop();
    pki?.remove();
  });

  it('the trust is the pin: a Chromium without it refuses the certificate (no error is ignored)', async () => {
    const plain = await launchBrowser();
    try {
      const page = await (await plain.newContext({ ignoreHTTPSErrors: false })).newPage();
      await assert.rejects(page.goto(`${running!.issuer}/.well-known/oauth-authorization-server`, { timeout: 10_000 }), /ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await plain.close();
    }
  });

  httpsChecks(() => {
    if (!pki || !running || !browser) throw new Error('not started');
    return { site: { issuer: running.issuer, pki }, browser };
  });
});
