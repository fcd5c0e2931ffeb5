/**
 * Real-browser helpers for tests: the pages' security properties (CSP, escaping, no
 * inline script) are only meaningful when a real engine enforces them, so tests drive
 * the system Chromium through playwright-core (no bundled browser download).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Launches headless Chromium with flags that keep it quiet and CI-friendly. */
/** Headless Chromium with the suite's flags; `extraArgs` add to them (a test that trusts its own certificate, say). */
export async function launchBrowser(extraArgs: readonly string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install chromium (apt-get install chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // a browser that does not start fails the test that needed it, with the reason; generous,
    // because the suite runs files in parallel on two cores and some of them build (the image
    // replay's tsc, the chart renderer's go build): a launch once took over 20 s then
    timeout: 60_000,
    args: [
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      ...extraArgs,
    ],
  });
}

export interface CspViolation {
  /** Where it came from: the DOM event or a console error. */
  source: 'event' | 'console';
  directive: string;
  blockedURI: string;
  url: string;
}

const BINDING = '__mcpAuthzReportCsp';

/**
 * Starts recording CSP violations on `page` and returns the live list. Call it before
 * navigating: the listener is installed as an init script on every document, and
 * console errors mentioning Content Security Policy are recorded too (some violations,
 * e.g. blocked form submissions, are reported only on the console).
 */
export async function collectCspViolations(page: Page): Promise<CspViolation[]> {
  const violations: CspViolation[] = [];
  await page.exposeFunction(BINDING, (directive: unknown, blockedURI: unknown, url: unknown) => {
    violations.push({
      source: 'event',
      directive: String(directive),
      blockedURI: String(blockedURI),
      url: String(url),
    });
  });
  // A string, not a function: the project compiles without DOM typings.
  await page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', function (e) {
      window[${JSON.stringify(BINDING)}](e.effectiveDirective || e.violatedDirective, e.blockedURI, e.documentURI);
    }, true);`,
  });
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content[- ]Security[- ]Policy/i.test(message.text())) {
      violations.push({ source: 'console', directive: message.text(), blockedURI: '', url: page.url() });
    }
  });
  return violations;
}
