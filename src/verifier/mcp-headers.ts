/**
 * The `Mcp-Method` and `Mcp-Name` request headers of Streamable HTTP (MCP 2026-07-28, SEP-2243),
 * which mirror the JSON-RPC body's `method` and its `params.name` / `params.uri` so that
 * intermediaries can route without reading the body.
 *
 * - {@link headerMismatch}: whether the headers a request carries match its body. Servers that
 *   process the body MUST refuse a mismatch with `400 Bad Request` and JSON-RPC error `-32020`
 *   (`HeaderMismatch`); the adapters do, before any scope check and before the MCP server runs.
 * - {@link operationFromHeaders} / {@link requiredScopesFromHeaders}: the operation and the
 *   scopes it needs from the headers alone, for a gateway that does not read bodies. Only safe
 *   where the MCP server behind it refuses a header that does not match the body.
 *
 * Header names are case-insensitive (callers pass the values); values are compared exactly,
 * after decoding the `=?base64?…?=` form the spec allows for `Mcp-Name`.
 */
import type { OperationScopeOptions } from './scopes.js';
import { operationScopes } from './scopes.js';

/** JSON-RPC error code of a header that is missing, malformed or does not match the body. */
export const HEADER_MISMATCH = -32020;

/** The two headers' values as received (undefined when absent). */
export interface McpHeaders {
  /** `Mcp-Method` */
  method?: string | undefined;
  /** `Mcp-Name` (possibly `=?base64?…?=`-encoded) */
  name?: string | undefined;
}

/** An operation named by the headers: its method and, for tools/call, prompts/get and resources/*, the name or URI. */
export interface HeaderOperation {
  method: string;
  name?: string;
}

/** Methods whose `Mcp-Name` is `params.name`; those whose it is `params.uri`. */
const NAME_METHODS = new Set(['tools/call', 'prompts/get']);
const URI_METHODS = new Set(['resources/read', 'resources/subscribe', 'resources/unsubscribe']);
/** Methods for which the spec requires `Mcp-Name`. */
const NAME_REQUIRED = new Set(['tools/call', 'prompts/get', 'resources/read']);

const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

/** An `Mcp-Name` value decoded (`=?base64?…?=` → its UTF-8 text); undefined when the encoding is malformed. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!value.startsWith('=?base64?') || !value.endsWith('?=')) return value;
  const match = SENTINEL.exec(value);
  if (!match || match[1]!.length % 4 !== 0) return undefined;
  try {
    const binary = atob(match[1]!);
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

/** The body value `Mcp-Name` mirrors: `params.name` (tools, prompts), `params.uri` (resources), else whichever is present. */
function bodyName(method: string, params: unknown): string | undefined {
  if (!isRecord(params)) return undefined;
  const name = typeof params.name === 'string' ? params.name : undefined;
  const uri = typeof params.uri === 'string' ? params.uri : undefined;
  if (NAME_METHODS.has(method)) return name;
  if (URI_METHODS.has(method)) return uri;
  return name ?? uri;
}

const quote = (value: string) => `'${value.length > 200 ? `${value.slice(0, 200)}…` : value}'`;

/**
 * Why the headers do not match the body (the JSON-RPC error message), or undefined when they
 * match or are both absent. A header present with a body that is not a single JSON-RPC request
 * or notification (a batch, a response, not an object) is a mismatch: there is no `method` it
 * could mirror. A request with neither header passes unchanged (clients before 2026-07-28).
 */
export function headerMismatch(headers: McpHeaders, body: unknown): string | undefined {
  if (headers.method === undefined && headers.name === undefined) return undefined;
  const which = headers.method !== undefined ? 'Mcp-Method' : 'Mcp-Name';
  if (!isRecord(body) || typeof body.method !== 'string') {
    const shape = Array.isArray(body) ? 'a batch' : isRecord(body) ? 'a message without a method' : 'not a JSON-RPC message';
    return `Header mismatch: ${which} header present but the body is ${shape}, not a single JSON-RPC request`;
  }
  if (headers.method === undefined) return 'Header mismatch: Mcp-Method header missing (Mcp-Name is present)';
  if (headers.method !== body.method) {
    return `Header mismatch: Mcp-Method header value ${quote(headers.method)} does not match body value ${quote(body.method)}`;
  }
  const expected = bodyName(body.method, body.params);
  if (headers.name === undefined) {
    return expected !== undefined && NAME_REQUIRED.has(body.method) ? `Header mismatch: Mcp-Name header missing for ${body.method}` : undefined;
  }
  const name = decodeHeaderValue(headers.name);
  if (name === undefined) return `Header mismatch: Mcp-Name header value ${quote(headers.name)} is not valid =?base64?…?= encoding`;
  if (expected === undefined) return `Header mismatch: Mcp-Name header value ${quote(name)} but the body has no name or uri`;
  if (name !== expected) return `Header mismatch: Mcp-Name header value ${quote(name)} does not match body value ${quote(expected)}`;
  return undefined;
}

/**
 * The operation the headers name, without reading the body. A missing `Mcp-Method`, a
 * `tools/call` / `prompts/get` / `resources/read` without `Mcp-Name`, or a malformed `Mcp-Name`
 * is an error (a string: the JSON-RPC message): trusting absent headers would let a client skip
 * the scope check by leaving them out.
 */
export function operationFromHeaders(headers: McpHeaders): HeaderOperation | string {
  if (headers.method === undefined || headers.method === '') return 'Header mismatch: Mcp-Method header missing';
  if (headers.name === undefined) {
    return NAME_REQUIRED.has(headers.method) ? `Header mismatch: Mcp-Name header missing for ${headers.method}` : { method: headers.method };
  }
  const name = decodeHeaderValue(headers.name);
  if (name === undefined) return `Header mismatch: Mcp-Name header value ${quote(headers.name)} is not valid =?base64?…?= encoding`;
  return { method: headers.method, name };
}

/**
 * Scopes the operation named by `Mcp-Method` / `Mcp-Name` needs under `toolScopes` /
 * `resourceScopes`, without reading the body; `{ error }` when the headers cannot say (see
 * {@link operationFromHeaders}: answer 400 with {@link HEADER_MISMATCH}). Only safe when the
 * MCP server that executes the body refuses a header that does not match it (the verifier's
 * adapters do in their default mode; an MCP server implementing 2026-07-28 MUST).
 */
export function requiredScopesFromHeaders(headers: McpHeaders, options: OperationScopeOptions): { scopes: string[] } | { error: string } {
  const operation = operationFromHeaders(headers);
  if (typeof operation === 'string') return { error: operation };
  return { scopes: operationScopes(options)(asMessage(operation)) };
}

/** The headers' operation shaped as the JSON-RPC message it claims to be (for the body-based scope rules). */
export function asMessage(operation: HeaderOperation): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  if (operation.name !== undefined) params[URI_METHODS.has(operation.method) ? 'uri' : 'name'] = operation.name;
  return { method: operation.method, params };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
