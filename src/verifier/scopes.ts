/**
 * Scopes per MCP operation: which scopes a `tools/call` or `resources/read` needs, read from
 * the JSON-RPC body (a single message or a batch) before it reaches the MCP server, and pure
 * helpers to filter `tools/list` by the scopes a token has.
 */

/**
 * Scopes each tool needs, by tool name. The key `'*'` applies to every tool without its own
 * entry; a tool with neither needs no scope beyond the adapter's `requiredScopes`.
 */
export type ToolScopes = Readonly<Record<string, readonly string[]>>;

/** Scopes a `resources/read` of a matching URI needs. `*` in `uriPattern` matches any run of characters; all matching rules apply. */
export interface ResourceScopeRule {
  uriPattern: string;
  scopes: readonly string[];
}

/** Per-operation scope requirements, given to the node/koa/fetch adapters. */
export interface OperationScopeOptions {
  toolScopes?: ToolScopes;
  resourceScopes?: readonly ResourceScopeRule[];
}

/** Scopes required by a tool under `toolScopes` (own entry, else `'*'`, else none). */
export function scopesForTool(name: string, toolScopes: ToolScopes): readonly string[] {
  return Object.hasOwn(toolScopes, name) ? toolScopes[name]! : Object.hasOwn(toolScopes, '*') ? toolScopes['*']! : [];
}

/** Whether a token with `scopes` may call tool `name`. */
export function allowedTool(name: string, scopes: readonly string[], toolScopes: ToolScopes): boolean {
  return scopesForTool(name, toolScopes).every((scope) => scopes.includes(scope));
}

/** The tools (e.g. of a `tools/list` result) a token with `scopes` may call, in order. */
export function filterTools<T extends { name: string }>(tools: readonly T[], scopes: readonly string[], toolScopes: ToolScopes): T[] {
  return tools.filter((tool) => allowedTool(tool.name, scopes, toolScopes));
}

/** A glob with `*` as a RegExp matching the whole string. */
export function globToRegExp(pattern: string): RegExp {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's');
}

/** Scopes required to read resource `uri` under `rules` (the union of every matching rule). */
export function scopesForResource(uri: string, rules: readonly ResourceScopeRule[]): string[] {
  return union(rules.filter((rule) => globToRegExp(rule.uriPattern).test(uri)).map((rule) => rule.scopes));
}

/**
 * Compiles the options into a function from a parsed JSON-RPC body (message or batch) to
 * every scope its `tools/call` and `resources/read` requests need. Unknown shapes need none
 * (the MCP server rejects them itself).
 */
export function operationScopes(options: OperationScopeOptions): (body: unknown) => string[] {
  const toolScopes = options.toolScopes ?? {};
  const rules = (options.resourceScopes ?? []).map((rule) => ({ pattern: globToRegExp(rule.uriPattern), scopes: rule.scopes }));
  const forMessage = (message: unknown): readonly string[] => {
    if (!isRecord(message) || !isRecord(message.params)) return [];
    if (message.method === 'tools/call' && typeof message.params.name === 'string') return scopesForTool(message.params.name, toolScopes);
    if (message.method === 'resources/read' && typeof message.params.uri === 'string') {
      const uri = message.params.uri;
      return union(rules.filter((rule) => rule.pattern.test(uri)).map((rule) => rule.scopes));
    }
    return [];
  };
  return (body) => (Array.isArray(body) ? union(body.map(forMessage)) : [...forMessage(body)]);
}

/** Whether the adapters need to see the request body at all. */
export function needsBody(options: OperationScopeOptions): boolean {
  return Object.keys(options.toolScopes ?? {}).length > 0 || (options.resourceScopes ?? []).length > 0;
}

/**
 * `scopes` plus every scope they imply under `hierarchy` (broader → narrower, transitive).
 * Order: the given scopes first, then implied ones.
 */
export function expandScopes(scopes: readonly string[], hierarchy: Readonly<Record<string, readonly string[]>> | undefined): string[] {
  const out = [...new Set(scopes)];
  if (!hierarchy) return out;
  const seen = new Set(out);
  for (let i = 0; i < out.length; i++) {
    const implied = Object.hasOwn(hierarchy, out[i]!) ? hierarchy[out[i]!]! : [];
    for (const scope of implied) if (!seen.has(scope)) (seen.add(scope), out.push(scope));
  }
  return out;
}

/** The union of scope lists, first occurrence order. */
export function union(lists: readonly (readonly string[])[]): string[] {
  return [...new Set(lists.flat())];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
