/**
 * A small browser for protocol tests: fetch with a path-aware cookie jar, manual
 * redirects, and HTML form parsing, so flows run through our real pages without Chromium
 * (the page tests use real Chromium). Stops when a URL starts with the client's redirect URI.
 */
export interface Cookie {
  name: string;
  value: string;
  path: string;
  expires?: number;
}

export class CookieJar {
  readonly cookies = new Map<string, Cookie>();

  store(res: Response): void {
    for (const header of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = header.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expires: number | undefined;
      for (const attr of attrs) {
        const [k = '', v = ''] = attr.split('=');
        if (k.toLowerCase() === 'path') path = v;
        if (k.toLowerCase() === 'max-age') expires = Date.now() + Number(v) * 1000;
        if (k.toLowerCase() === 'expires' && expires === undefined) expires = Date.parse(v);
      }
      const key = `${name};${path}`;
      if (expires !== undefined && expires <= Date.now()) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path, ...(expires !== undefined ? { expires } : {}) });
    }
  }

  header(url: string): string {
    const { pathname } = new URL(url);
    return [...this.cookies.values()]
      .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/')
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

export interface FormField {
  name: string;
  value: string;
  type: string;
  checked: boolean;
}

export interface ParsedForm {
  action: string;
  method: string;
  fields: FormField[];
  /** submit buttons with a name */
  buttons: { name: string; value: string }[];
}

const unescape = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#x27;/g, "'")
    .replace(/&#x2F;/g, '/')
    .replace(/&#x3D;/g, '=')
    .replace(/&#x60;/g, '`')
    .replace(/&amp;/g, '&');

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    out[m[1]!.toLowerCase()] = unescape(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

export function parseForms(html: string, base: string): ParsedForm[] {
  const forms: ParsedForm[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[1]!);
    const body = m[2]!;
    const fields: FormField[] = [];
    for (const input of body.matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1]!);
      if (!a.name) continue;
      fields.push({ name: a.name, value: a.value ?? '', type: (a.type ?? 'text').toLowerCase(), checked: 'checked' in a });
    }
    const buttons: { name: string; value: string }[] = [];
    for (const b of body.matchAll(/<button\b([^>]*)>/gi)) {
      const a = attributes(b[1]!);
      if (a.name) buttons.push({ name: a.name, value: a.value ?? '' });
    }
    forms.push({ action: new URL(attrs.action ?? base, base).href, method: (attrs.method ?? 'get').toLowerCase(), fields, buttons });
  }
  return forms;
}

/** The form's submission: hidden/text/password fields, checked checkboxes, one named button. */
export function formData(form: ParsedForm, overrides: Record<string, string | string[]> = {}, button?: { name: string; value: string }): URLSearchParams {
  const data = new URLSearchParams();
  for (const f of form.fields) {
    if (f.name in overrides) continue;
    if ((f.type === 'checkbox' || f.type === 'radio') && !f.checked) continue;
    if (f.type === 'submit') continue;
    data.append(f.name, f.value);
  }
  for (const [k, v] of Object.entries(overrides)) for (const value of Array.isArray(v) ? v : [v]) data.append(k, value);
  if (button) data.append(button.name, button.value);
  return data;
}

export interface Page {
  url: string;
  status: number;
  html: string;
  headers: Headers;
  forms: ParsedForm[];
}

export class Browser {
  readonly jar = new CookieJar();

  /** GET or POST one URL, following redirects until a page, or until `stopAt` matches. */
  async go(url: string, init: { method?: string; body?: URLSearchParams } = {}, stopAt?: string): Promise<Page> {
    let method = init.method ?? 'GET';
    let body: URLSearchParams | undefined = init.body;
    for (let hop = 0; hop < 20; hop++) {
      if (stopAt && url.startsWith(stopAt)) return { url, status: 0, html: '', headers: new Headers(), forms: [] };
      const res = await fetch(url, {
        method,
        redirect: 'manual',
        headers: { cookie: this.jar.header(url), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), accept: 'text/html' },
        ...(body ? { body: body.toString() } : {}),
      });
      this.jar.store(res);
      if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
        url = new URL(res.headers.get('location')!, url).href;
        method = 'GET';
        body = undefined;
        continue;
      }
      const html = await res.text();
      return { url, status: res.status, html, headers: res.headers, forms: parseForms(html, url) };
    }
    throw new Error('too many redirects');
  }

  submit(form: ParsedForm, overrides: Record<string, string | string[]> = {}, button?: { name: string; value: string }, stopAt?: string): Promise<Page> {
    return this.go(form.action, { method: 'POST', body: formData(form, overrides, button) }, stopAt);
  }
}

export function findForm(page: Page, actionIncludes: string): ParsedForm {
  const form = page.forms.find((f) => f.action.includes(actionIncludes));
  if (!form) throw new Error(`no form posting to *${actionIncludes}* on ${page.url} (status ${page.status}): ${page.html.slice(0, 300)}`);
  return form;
}

export interface AuthorizeOptions {
  username?: string;
  password?: string;
  /** checkbox values to submit on the consent page (default: as the page preselects) */
  scopes?: string[];
  /** stop at the consent page and click Deny */
  deny?: boolean;
}

/**
 * Drives GET /auth?… through sign-in and consent to the client's redirect URI.
 * Returns the callback URL (with code or error).
 */
export async function authorize(browser: Browser, authUrl: string, redirectUri: string, password: string, options: AuthorizeOptions = {}): Promise<URL> {
  let page = await browser.go(authUrl, {}, redirectUri);
  for (let step = 0; step < 5; step++) {
    if (page.url.startsWith(redirectUri)) return new URL(page.url);
    const login = page.forms.find((f) => f.action.endsWith('/login'));
    if (login) {
      page = await browser.submit(login, { username: options.username ?? 'alice', password: options.password ?? password }, undefined, redirectUri);
      continue;
    }
    const consent = page.forms.find((f) => f.action.endsWith('/confirm'));
    if (consent) {
      if (options.deny) {
        page = await browser.submit(findForm(page, '/abort'), {}, undefined, redirectUri);
      } else {
        page = await browser.submit(consent, options.scopes ? { scope: options.scopes } : {}, undefined, redirectUri);
      }
      continue;
    }
    throw new Error(`unexpected page ${page.url} (${page.status}): ${page.html.replace(/\s+/g, ' ').slice(0, 400)}`);
  }
  throw new Error('authorization did not finish');
}
