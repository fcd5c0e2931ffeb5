/**
 * `cacheScope: "private"` on `tools/list` results that depend on the token (MCP 2026-07-28,
 * server/utilities/caching): a list filtered by the caller's scopes "MAY be cached and reused
 * only within the same authorization context"; a `"public"` one could be served by a shared
 * cache to a caller with other scopes.
 *
 * {@link privateToolLists} wraps a transport (structurally the SDK's `Transport`; the SDK is not
 * imported) so that every `tools/list` result it sends carries `cacheScope: "private"`, and
 * `ttlMs: 0` (immediately stale) unless the server set one: the spec requires both hints.
 */

/** The parts of an MCP transport (the SDK's `StreamableHTTPServerTransport`, say) the wrapper uses. */
export interface TransportLike {
  onmessage?: ((message: never, extra?: never) => void) | undefined;
  send(message: never, options?: never): Promise<void>;
}

type Id = string | number;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A JSON-RPC result for one of `ids`, marked private (and `ttlMs` 0 when absent); anything else unchanged. */
export function markPrivate(message: unknown, ids: ReadonlySet<Id>): unknown {
  if (!isRecord(message) || !isRecord(message.result) || !ids.has(message.id as Id)) return message;
  const result = message.result;
  return { ...message, result: { ...result, ttlMs: typeof result.ttlMs === 'number' ? result.ttlMs : 0, cacheScope: 'private' } };
}

/**
 * Marks the `tools/list` results `transport` sends `cacheScope: "private"`. Call it before
 * `server.connect(transport)` (the SDK keeps an `onmessage` set before connecting and calls it
 * first). Use it wherever `tools/list` is filtered per token (tools registered per request with
 * `allowedTool`, or a list passed through `filterTools`). Returns `transport`.
 */
export function privateToolLists<T extends TransportLike>(transport: T): T {
  const listIds = new Set<Id>();
  const target = transport as unknown as {
    onmessage?: (message: unknown, extra?: unknown) => void;
    send(message: unknown, options?: unknown): Promise<void>;
  };
  const previous = target.onmessage;
  target.onmessage = (message, extra) => {
    for (const m of Array.isArray(message) ? message : [message]) {
      if (isRecord(m) && m.method === 'tools/list' && (typeof m.id === 'string' || typeof m.id === 'number')) listIds.add(m.id);
    }
    previous?.(message, extra);
  };
  const send = target.send.bind(transport);
  target.send = (message, options) => {
    const marked = markPrivate(message, listIds);
    if (marked !== message && isRecord(message)) listIds.delete(message.id as Id);
    return send(marked, options);
  };
  return transport;
}
