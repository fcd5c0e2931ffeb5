/**
 * A `tools/call`'s arguments as approvals and reports see them: a digest that binds an approval
 * to exactly these arguments (RFC 8785 canonical JSON, so key order and number spelling do not
 * matter), and a redacted copy in which the values the MCP server declared sensitive are
 * replaced, for the audit trail and logs.
 */
import canonicalize from 'canonicalize';
import { sha256Base64url } from './util.js';

/** What replaces a sensitive argument's value. */
export const REDACTED = '[redacted]';
/** Longest redacted arguments text a report carries. */
export const MAX_REPORTED_ARGUMENTS = 512;
/** The form of a digest: `sha-256:` and 43 base64url characters. */
export const ARGUMENTS_DIGEST = /^sha-256:[A-Za-z0-9_-]{43}$/;

export type ToolArguments = Readonly<Record<string, unknown>>;

/** The call's `params.arguments` as an object (absent → `{}`); undefined when it is not an object. */
export function argumentsOf(params: unknown): ToolArguments | undefined {
  if (typeof params !== 'object' || params === null) return undefined;
  const args = (params as { arguments?: unknown }).arguments;
  if (args === undefined) return {};
  return typeof args === 'object' && args !== null && !Array.isArray(args) ? (args as ToolArguments) : undefined;
}

/** RFC 8785 canonical JSON of `args` (values JSON cannot hold are dropped as JSON.stringify drops them). */
export function canonicalArguments(args: ToolArguments): string {
  return canonicalize(args) ?? '{}';
}

/** `sha-256:<base64url>` of the canonical arguments. */
export async function argumentsDigest(args: ToolArguments): Promise<string> {
  return `sha-256:${await sha256Base64url(canonicalArguments(args))}`;
}

/** A copy of `args` with each top-level `sensitive` argument that is present replaced by {@link REDACTED}. */
export function redactArguments(args: ToolArguments, sensitive: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args)) out[name] = sensitive.includes(name) ? REDACTED : value;
  return out;
}

/** The redacted arguments as canonical JSON, cut to {@link MAX_REPORTED_ARGUMENTS} characters (an ellipsis marks a cut). */
export function reportedArguments(args: ToolArguments, sensitive: readonly string[] = []): string {
  const text = canonicalArguments(redactArguments(args, sensitive));
  return text.length <= MAX_REPORTED_ARGUMENTS ? text : `${text.slice(0, MAX_REPORTED_ARGUMENTS - 1)}…`;
}

/**
 * `text` with every sensitive argument's value taken out: a summary or message that quotes one
 * by mistake never carries it. Strings of 4 characters or more (and the JSON of non-strings)
 * are replaced wherever they occur.
 */
export function withoutSensitiveValues(text: string, args: ToolArguments, sensitive: readonly string[] = []): string {
  let out = text;
  for (const name of sensitive) {
    if (!Object.hasOwn(args, name)) continue;
    const value = args[name];
    const needles = typeof value === 'string' ? [value] : value === undefined ? [] : [JSON.stringify(value)];
    for (const needle of needles) if (needle && needle.length >= 4) out = out.split(needle).join(REDACTED);
  }
  return out;
}
