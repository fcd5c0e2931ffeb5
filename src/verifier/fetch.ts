/**
 * Fetch-API adapter (Workers, Deno, Bun, Hono, Next.js route handlers, the SDK's
 * `WebStandardStreamableHTTPServerTransport`).
 *
 * `authenticateRequest(verifier, request, options)` resolves to the `AuthInfo` when the
 * request may proceed, or to the `Response` to send (401/403/503, a CORS preflight, 400/413
 * for an unreadable body). It reads a clone of the body for `toolScopes` / `resourceScopes`,
 * so `request` stays readable: `transport.handleRequest(request, { authInfo })`.
 *
 * Tool call reports: hand the response back through the result's `report(response)` (it
 * returns the same response), so a `tools/call` is reported with its outcome once the
 * response has been read (a clone of it, at most 64 KiB).
 */
import type { Challenge } from './challenge.js';
import { corsHeaders, createGuard, parseJsonBody, preflightAnswer, readChunks, BodyError, type AdapterOptions, type CorsOptions } from './http.js';
import { METADATA_HEADERS } from './metadata.js';
import { OBSERVED_BYTES, outcomeOf, type ToolCallStart } from './tool-reports.js';
import type { AuthInfo, Verifier } from './types.js';

/** What `authenticateRequest` resolves to when the request may proceed. */
export interface AuthenticatedRequest extends AuthInfo {
  /**
   * Hand back the response you answer with: a reported `tools/call` gets its outcome and
   * duration from it (read from a clone, in the background). Returns `response` unchanged.
   * Not enumerable: spreading or serialising the AuthInfo leaves it out.
   */
  report(response: Response): Response;
}

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
export async function authenticateRequest(verifier: Verifier, request: Request, options: AdapterOptions = NO_OPTIONS): Promise<AuthenticatedRequest | Response> {
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
  if ('answer' in result) return toResponse(result.answer);
  const { calls } = result;
  const auth = { ...result.auth } as AuthenticatedRequest;
  Object.defineProperty(auth, 'report', {
    enumerable: false,
    value: (response: Response): Response => {
      if (calls.length && response instanceof Response) void watch(response, calls, guard!);
      return response;
    },
  });
  return auth;
}

/** Reads up to 64 KiB of a clone of `response`, then reports each call with its outcome. */
async function watch(response: Response, calls: ToolCallStart[], guard: ReturnType<typeof createGuard>): Promise<void> {
  let text = '';
  try {
    const body = response.clone().body;
    if (body) {
      const reader = body.getReader();
      const decoder = new TextDecoder();
      let size = 0;
      try {
        for (let r = await reader.read(); !r.done && size < OBSERVED_BYTES; r = await reader.read()) {
          const part = r.value.subarray(0, OBSERVED_BYTES - size);
          size += part.byteLength;
          text += decoder.decode(part, { stream: true });
        }
      } finally {
        reader.cancel().catch(() => undefined);
      }
    }
  } catch {
    // a body that failed midway: the status and what was read decide
  }
  for (const call of calls) guard.finish(call, outcomeOf(response.status, text, call.rpcId));
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
