/**
 * Every form a secret travels in, for the "no secret in any log" tests: a log, an audit
 * record or an error reply may carry a secret not as itself but encoded the way it was sent
 * or the way the line was written. Each form is labelled for the failure message (never the
 * secret itself).
 */

/** `application/x-www-form-urlencoded` (what URLSearchParams writes: spaces as `+`). */
export const formEncode = (value: string): string => new URLSearchParams([['', value]]).toString().slice(1);

/** RFC 6749 §2.3.1 as most clients write it: encodeURIComponent with `+` for spaces. */
export const uriComponentPlus = (value: string): string => encodeURIComponent(value).replace(/%20/g, '+');

/**
 * RFC 6749 §2.3.1 / Appendix B taken strictly (oauth4webapi, hence openid-client, sends Basic
 * credentials so): also `-_.!~*'()` percent-encoded, spaces as `+`.
 */
export const strictFormEncode = (value: string): string =>
  encodeURIComponent(value).replace(/[-_.!~*'()]|%20/g, (c) => (c === '%20' ? '+' : `%${c.charCodeAt(0).toString(16).toUpperCase()}`));

const html = (value: string, apostrophe: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, apostrophe);

/** The secret itself, URL-encoded (encodeURIComponent, form encoding), JSON-escaped and HTML-escaped. */
export function encodedForms(secret: string): Map<string, string> {
  const forms = new Map<string, string>();
  const add = (form: string, label: string) => {
    if (!forms.has(form)) forms.set(form, label);
  };
  add(secret, 'literal');
  add(encodeURIComponent(secret), 'encodeURIComponent');
  add(formEncode(secret), 'form-urlencoded');
  add(uriComponentPlus(secret), 'encodeURIComponent with +');
  add(strictFormEncode(secret), 'strictly form-urlencoded');
  add(JSON.stringify(secret).slice(1, -1), 'JSON-escaped');
  // JSON text inside a JSON string (a logged response body, say): escaped twice
  add(JSON.stringify(JSON.stringify(secret).slice(1, -1)).slice(1, -1), 'JSON-escaped twice');
  add(html(secret, '&#39;'), 'HTML-escaped');
  add(html(secret, '&#x27;'), 'HTML-escaped (&#x27;)');
  return forms;
}

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/**
 * The HTTP Basic credentials of a client (`Basic base64(id:secret)`), as sent raw and with
 * id and secret form-urlencoded first (RFC 6749 §2.3.1), with and without the scheme.
 */
export function basicForms(clientId: string, secret: string): Map<string, string> {
  const forms = new Map<string, string>();
  const variants: [string, string][] = [
    [`${clientId}:${secret}`, 'raw'],
    [`${formEncode(clientId)}:${formEncode(secret)}`, 'form-urlencoded'],
    [`${uriComponentPlus(clientId)}:${uriComponentPlus(secret)}`, 'encodeURIComponent with +'],
    [`${strictFormEncode(clientId)}:${strictFormEncode(secret)}`, 'strictly form-urlencoded'],
  ];
  for (const [pair, how] of variants) {
    const encoded = base64(pair);
    if (!forms.has(`Basic ${encoded}`)) forms.set(`Basic ${encoded}`, `Basic header value (${how})`);
    if (!forms.has(encoded)) forms.set(encoded, `base64 of id:secret (${how})`);
    const unpadded = encoded.replace(/=+$/, '');
    if (!forms.has(unpadded)) forms.set(unpadded, `base64 of id:secret without padding (${how})`);
  }
  return forms;
}

/** Every cookie a response sets (name → value), deletions (empty values) aside. */
export function setCookies(res: Response): [string, string][] {
  const out: [string, string][] = [];
  for (const header of res.headers.getSetCookie()) {
    const pair = header.split(';')[0] ?? '';
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const value = pair.slice(eq + 1).trim();
    if (value) out.push([pair.slice(0, eq).trim(), value]);
  }
  return out;
}
