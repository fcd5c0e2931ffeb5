/**
 * Speaking the MCP SDK's errors without depending on it. The SDK's `requireBearerAuth({ verifier })`
 * sorts what `verifyAccessToken` throws with `instanceof` against its own classes
 * (`@modelcontextprotocol/sdk/server/auth/errors.js`): `InvalidTokenError` → 401 with the
 * challenge, `InsufficientScopeError` → 403, `ServerError` → 500, anything else → 500. So the
 * verifier's `verifyAccessToken` throws an instance of the matching SDK class whenever the SDK
 * is installed, found at the first refusal; the object is still a {@link VerifierError} to
 * everyone who asks (`code`, `status`, `instanceof VerifierError`, `isVerifierError`).
 *
 * The SDK is an optional peer dependency: where it is not installed (or the runtime cannot load
 * it) nothing is loaded and refusals are plain VerifierErrors. The SDK ships an ES module and a
 * CommonJS build with distinct classes; the CommonJS ones are used when the CommonJS
 * `requireBearerAuth` has been loaded (a CommonJS MCP server), the ES module ones otherwise.
 */
import { VERIFIER_ERROR, type VerifierError } from './errors.js';
import type { SdkErrorClasses } from './types.js';

const SDK_ERRORS = '@modelcontextprotocol/sdk/server/auth/errors.js';
const SDK_BEARER_AUTH = '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';

/**
 * An instance of the SDK class for `error`'s status, carrying `error`'s fields and brand; its
 * `message` is the wire-safe description (the SDK sends it as `error_description`), and `cause`
 * the original error with the detail for logs.
 */
export function asSdkError(error: VerifierError, sdk: SdkErrorClasses): Error {
  const Class = error.status === 401 ? sdk.InvalidTokenError : error.status === 403 ? sdk.InsufficientScopeError : sdk.ServerError;
  const mapped = new Class(error.description);
  const fields: Record<PropertyKey, unknown> = {
    name: 'VerifierError',
    code: error.code,
    status: error.status,
    oauthError: error.oauthError,
    description: error.description,
    requiredScopes: error.requiredScopes,
    grantedScopes: error.grantedScopes,
    retryAfter: error.retryAfter,
    cause: error,
    [VERIFIER_ERROR]: true,
  };
  for (const key of Reflect.ownKeys(fields)) Object.defineProperty(mapped, key, { value: fields[key], enumerable: key !== VERIFIER_ERROR, configurable: true });
  return mapped;
}

function isClasses(value: unknown): value is SdkErrorClasses {
  const m = value as Partial<SdkErrorClasses> | undefined;
  return typeof m?.InvalidTokenError === 'function' && typeof m.InsufficientScopeError === 'function' && typeof m.ServerError === 'function';
}

interface NodeModule {
  createRequire(from: string): { (id: string): unknown; resolve(id: string): string; cache: Record<string, unknown> };
}

/** The CommonJS classes, when a CommonJS `requireBearerAuth` is loaded in this process (Node only). */
function commonJsClasses(): SdkErrorClasses | undefined {
  try {
    const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
    const module = typeof get === 'function' ? (get('node:module') as Partial<NodeModule> | undefined) : undefined;
    if (typeof module?.createRequire !== 'function') return undefined;
    const require = module.createRequire(import.meta.url);
    if (!require.cache[require.resolve(SDK_BEARER_AUTH)]) return undefined;
    const classes = require(SDK_ERRORS);
    return isClasses(classes) ? classes : undefined;
  } catch {
    return undefined;
  }
}

let loading: Promise<SdkErrorClasses | undefined> | undefined;

/** The SDK's error classes where the SDK is installed, else undefined; looked up once. */
export function installedSdkErrors(): Promise<SdkErrorClasses | undefined> {
  loading ??= (async () => {
    const commonJs = commonJsClasses();
    if (commonJs) return commonJs;
    try {
      // a variable, so bundlers leave the optional peer alone
      const specifier = SDK_ERRORS;
      const classes: unknown = await import(specifier);
      return isClasses(classes) ? classes : undefined;
    } catch {
      return undefined;
    }
  })();
  return loading;
}
