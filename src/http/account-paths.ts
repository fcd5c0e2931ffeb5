/** Where a signed-in person's own pages live, below the issuer's path; they link to each other. */
export const CONNECTED_APPS_PATH = '/account/apps';
export const ACCOUNT_SECURITY_PATH = '/account/security';
/** Starts a sign-in for the account pages (src/interactions/account-sign-in.ts). */
export const ACCOUNT_SIGN_IN_PATH = '/account/sign-in';
/** Where that sign-in comes back: the redirect URI of the built-in account client. */
export const ACCOUNT_SIGNED_IN_PATH = '/account/signed-in';
/** A person's approval of one tool call. */
export const APPROVALS_PATH = '/approvals';

/** Path prefixes (below the issuer's path) a sign-in may return to. */
const RETURNABLE = ['/account/', `${APPROVALS_PATH}/`];
/** Never returned to: they would start (or finish) the sign-in again. */
const NOT_RETURNABLE = [ACCOUNT_SIGN_IN_PATH, ACCOUNT_SIGNED_IN_PATH];
const MAX_RETURN_LENGTH = 1024;
/** A placeholder origin: whatever resolves against it to another origin is not a path of ours. */
const PLACEHOLDER = 'http://return.invalid';

/**
 * `raw` when it is a path on this server below `${basePath}/account/` or
 * `${basePath}/approvals/` (with its query, never a fragment); anything else — another
 * origin (`//host`, `https://host`, `/\host`), dot segments, encoded slashes, backslashes or
 * dots, control characters — gives the connected apps page.
 */
export function safeReturnPath(basePath: string, raw: unknown): string {
  const fallback = `${basePath}${CONNECTED_APPS_PATH}`;
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_RETURN_LENGTH) return fallback;
  // one leading slash, then no second one, no backslash, no whitespace or control character
  if (!raw.startsWith('/') || raw.startsWith('//') || /[\\\u0000-\u0020\u007f-\u009f#]/.test(raw)) return fallback;
  // encoded '.', '/', '\' and '%' would mean something else once decoded again
  if (/%(2e|2f|5c|25)/i.test(raw)) return fallback;
  const url = URL.parse(raw, PLACEHOLDER);
  if (!url || url.origin !== PLACEHOLDER) return fallback;
  // no dot segments: the path must be exactly what was given
  if (url.pathname !== raw.split('?')[0] || url.pathname.split('/').some((s) => s === '.' || s === '..')) return fallback;
  const below = url.pathname.slice(basePath.length);
  if (!url.pathname.startsWith(basePath) || !RETURNABLE.some((prefix) => below.startsWith(prefix))) return fallback;
  if (NOT_RETURNABLE.some((path) => below === path || below.startsWith(`${path}/`))) return fallback;
  return `${url.pathname}${url.search}`;
}

/** The link that signs a person in for an account page, then brings them back to `returnPath`. */
export function signInHref(basePath: string, returnPath: string): string {
  return `${basePath}${ACCOUNT_SIGN_IN_PATH}?return=${encodeURIComponent(returnPath)}`;
}
