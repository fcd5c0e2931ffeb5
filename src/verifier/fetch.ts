/**
 * Fetch-API adapter (Workers, Deno, Bun, Hono, Next.js route handlers, the SDK's
 * `WebStandardStreamableHTTPServerTransport`).
 *
 * `authenticateRequest(verifier, request, options)` resolves to the `AuthInfo` when the
 * request may proceed, or to the `Response` to send (401/403/503, a CORS preflight, 400/413
 * for an unreadable body). It reads a clone of the body for `toolScopes` / `resourceScopes`,
 * so `request` stays readable: `transport.handleRequest(request, { authInfo })`.
 */
import type { Challenge } from './challenge.js';
import { corsHeaders, createGuard, parseJsonBody, preflightAnswer, readChunks, BodyError, type AdapterOptions, type CorsOptions } from './http.js';
import { METADATA_HEADERS } from './metadata.js';
import type { AuthInfo, Verifier } from './types.js';

const toResponse = (answer: Challenge) => new Response(answer.body === '' ? null : answer.body, { status: answer.status, headers: answer.headers });

async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  if (Number(request.headers.get('content-length') ?? 0) > limit) throw new BodyError(413);
  const body = request.clone().body;
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks = {
    async *[Symbol.asyncIterator]() {
      try {
        for (let r = await reader.read(); !r.done; r = await reader.read()) yield r.value;
      } finally {
        // not awaited: cancelling one branch of a tee settles only once the other is cancelled too
        reader.cancel().catch(() => undefined);
      }
    },
  };
  return readChunks(chunks, limit);
}

const guards = new WeakMap<Verifier, WeakMap<AdapterOptions, ReturnType<typeof createGuard>>>();
const NO_OPTIONS: AdapterOptions = {};

/** Authenticates a fetch `Request`: `AuthInfo` to proceed, or the `Response` to answer with. Reuse one `options` object across calls. */
export async function authenticateRequest(verifier: Verifier, request: Request, options: AdapterOptions = NO_OPTIONS): Promise<AuthInfo | Response> {
  let byOptions = guards.get(verifier);
  if (!byOptions) guards.set(verifier, (byOptions = new WeakMap()));
  let guard = byOptions.get(options);
  if (!guard) byOptions.set(options, (guard = createGuard(verifier, options)));
  const origin = request.headers.get('origin');
  const preflight = guard.preflight({ method: request.method, origin });
  if (preflight) return toResponse(preflight);
  const result = await guard.check({
    method: request.method,
    origin,
    authorization: request.headers.get('authorization'),
    mcp: { method: request.headers.get('mcp-method') ?? undefined, name: request.headers.get('mcp-name') ?? undefined },
    readBody: async (limit) => parseJsonBody(await readLimited(request, limit)),
  });
  return 'answer' in result ? toResponse(result.answer) : result.auth;
}

/** The headers to add to your own responses for CORS (`Access-Control-Allow-Origin`, `-Expose-Headers`). */
export function responseCorsHeaders(request: Request, cors?: CorsOptions | false): Record<string, string> {
  return corsHeaders(cors, request.headers.get('origin'));
}

/** The RFC 9728 document as a `Response` (serve it at `verifier.metadataPath`); a preflight answer for OPTIONS. */
export function metadataResponse(verifier: Verifier, request?: Request): Response {
  if (request?.method === 'OPTIONS') return toResponse(preflightAnswer({}, request.headers.get('origin')));
  return new Response(request?.method === 'HEAD' ? null : JSON.stringify(verifier.protectedResourceMetadata()), { status: 200, headers: { ...METADATA_HEADERS } });
}
