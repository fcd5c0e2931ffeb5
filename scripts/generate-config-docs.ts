/**
 * Generates docs/configuration.md from the one config schema (src/config/schema.ts), so
 * the reference can't drift from what the loader accepts: a test compares the committed
 * file with {@link renderConfigDocs}.
 *
 *   node dist/scripts/generate-config-docs.js           write docs/configuration.md
 *   node dist/scripts/generate-config-docs.js --check   exit 1 when the file is stale
 *
 * The schema is read through zod's JSON Schema export (input side: what people write,
 * with its defaults); `.describe()` texts become the descriptions.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.js';

/** Where the generated file lives, found from this module (run compiled, from dist/scripts/). */
export const CONFIG_DOCS_PATH = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));

/** The example shown in the docs; the config tests check it loads. */
export const EXAMPLE_CONFIG_YAML = `resources:
  - uri: https://notes.example.com/mcp
    name: Notes
    scopes:
      notes:read:   { description: Read your notes }
      notes:write:  { description: Create and edit notes }
      notes:delete: { description: Delete notes, dangerous: true }
    defaultScopes: [notes:read]
clients:
  - client_id: nightly-report
    client_secret: change-me-to-a-long-random-secret
    grant_types: [client_credentials]
    scope: notes:read
    resources: [https://notes.example.com/mcp]
`;

/** The subset of JSON Schema that zod emits for this schema. */
interface JsonSchema {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  const?: unknown;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
}

interface Section {
  /** dotted path of the object documented, '' for the top level */
  path: string;
  description?: string | undefined;
  rows: Row[];
}

interface Row {
  key: string;
  type: string;
  default: string;
  description: string;
}

const INTRO = `# Configuration

<!-- Generated from src/config/schema.ts by \`npm run docs\`; do not edit by hand. -->

mcp-authz reads one configuration, validated against one schema at start:

1. **A file**, named by \`--config FILE\` on the command line or, failing that, by the
   \`MCP_AUTHZ_CONFIG\` environment variable. It is YAML, or JSON when its name ends in
   \`.json\`; its top level is a mapping of the keys below. Without a file, every key
   takes its default.
2. **Environment variables**, which override the file's values:

   | variable | key | notes |
   | --- | --- | --- |
   | \`PORT\` | \`port\` | digits only |
   | \`HOST\` | \`host\` | |
   | \`ISSUER\` | \`issuer\` | default \`http://localhost:$PORT\`; a trailing slash is dropped |
   | \`DATA_DIR\` | \`dataDir\` | |
   | \`REDIS_URL\` | \`redisUrl\` | |
   | \`REDIS_SENTINELS\` | \`redisSentinels\` | comma-separated \`host:port\` |
   | \`REDIS_SENTINEL_NAME\` | \`redisSentinelName\` | |
   | \`REDIS_CLUSTER_NODES\` | \`redisClusterNodes\` | comma-separated \`host:port\` |
   | \`REDIS_PASSWORD\` | \`redisPassword\` | |
   | \`REDIS_PASSWORD_FILE\` | \`redisPasswordFile\` | the file's text, without its trailing newline |
   | \`REDIS_TLS\` | \`redisTls\` | \`true\`/\`1\` or \`false\`/\`0\` |
   | \`LOG_LEVEL\` | \`logLevel\` | |
   | \`TRUST_PROXY\` | \`trustProxy\` | \`true\`/\`1\` or \`false\`/\`0\` |
   | \`PROXY_HOPS\` | \`proxyHops\` | a number |
   | \`COOKIE_KEYS_FILE\` | \`secrets.cookieKeysFile\` | a path |
   | \`SIGNING_KEYS_FILE\` | \`keys.file\` | a path |

   A variable set to the empty string counts as unset.

Unknown keys are errors (a typo is never silently ignored). An invalid configuration
stops the process with exit code 78 (\`EX_CONFIG\`) and one line per problem, naming the
field by its path (for example \`resources[0].scopes["notes read"]\`) and why it was refused.

Resource URIs are compared in canonical form: lowercase scheme and host, no default
port, no fragment and no trailing slash (\`HTTPS://Notes.Example.com:443/mcp/\` is
\`https://notes.example.com/mcp\`).

In the tables, a key written \`list[]\` is an item of a list and \`map.<name>\` an entry of a
mapping whose keys you choose.
`;

export function renderConfigDocs(): string {
  const input = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  // zod leaves out the default of a value whose schema transforms (e.g. `resources`, whose
  // URIs are canonicalised) on the input side; the output side, same shape, keeps it
  const output = z.toJSONSchema(configSchema, { io: 'output', unrepresentable: 'any' }) as JsonSchema;
  if (!isDocumentedObject(input)) throw new Error('the config schema is not a strict object');
  const sections: Section[] = [];
  collect(input, output, '', sections);
  const body = sections.map(renderSection).join('\n');
  const example = `## Example\n\n\`\`\`yaml\n${EXAMPLE_CONFIG_YAML}\`\`\`\n`;
  return `${INTRO}\n${body}\n${example}`;
}

/** True for an object whose keys are all declared: it gets a table of its own. */
function isDocumentedObject(schema: JsonSchema | undefined): schema is DocumentedObject {
  return schema?.type === 'object' && schema.properties !== undefined && schema.additionalProperties === false;
}

/** A mapping with free keys whose values are documented objects (`scopes`). */
function recordValue(schema: JsonSchema): DocumentedObject | undefined {
  const value = schema.additionalProperties;
  return schema.type === 'object' && !schema.properties && typeof value === 'object' && isDocumentedObject(value) ? value : undefined;
}

type DocumentedObject = JsonSchema & { properties: Record<string, JsonSchema> };

/**
 * Appends a section for `schema` (a documented object), then one per nested object, depth
 * first. `output` is the same node on the output side, read only for defaults.
 */
function collect(schema: DocumentedObject, output: JsonSchema | undefined, path: string, out: Section[], description?: string): void {
  const section: Section = { path, description, rows: [] };
  out.push(section);
  const nested: [DocumentedObject, JsonSchema | undefined, string, string | undefined][] = [];
  const required = new Set(schema.required ?? []);
  for (const [name, prop] of Object.entries(schema.properties)) {
    const key = path ? `${path}.${name}` : name;
    const outProp = output?.properties?.[name];
    let type = typeName(prop);
    const items = prop.type === 'array' ? prop.items : undefined;
    if (isDocumentedObject(prop)) {
      nested.push([prop, outProp, key, prop.description]);
      type = `object (see \`${key}\`)`;
    } else if (isDocumentedObject(items)) {
      nested.push([items, outProp?.items, `${key}[]`, prop.description]);
      type = `list of objects (see \`${key}[]\`)`;
    } else if (items && variantsOf(items)) {
      // a list of objects of several kinds (`connections`): a section per kind
      const variants = variantsOf(items)!;
      const outVariants = outProp?.items ? variantsOf(outProp.items) : undefined;
      const paths = variants.map(([tag]) => `${key}[kind=${tag}]`);
      variants.forEach(([, variant], i) => nested.push([variant, outVariants?.[i]?.[1], paths[i]!, variant.description ?? `\`${key}\` items of \`kind: ${variants[i]![0]}\`.`]));
      type = `list of objects (see ${paths.map((p) => `\`${p}\``).join(', ')})`;
    } else {
      const value = recordValue(prop);
      if (value) {
        const outValue = typeof outProp?.additionalProperties === 'object' ? outProp.additionalProperties : undefined;
        nested.push([value, outValue, `${key}.<name>`, prop.description]);
        type = `mapping of name → object (see \`${key}.<name>\`)`;
      }
    }
    const def = prop.default ?? outProp?.default;
    section.rows.push({
      key,
      type,
      default: isDocumentedObject(prop) && def !== undefined ? 'see below' : defaultText(def, required.has(name)),
      description: prop.description ?? '',
    });
  }
  for (const [child, outChild, childPath, childDescription] of nested) collect(child, outChild, childPath, out, childDescription);
}

function renderSection({ path, description, rows }: Section): string {
  const heading = path ? `## \`${path}\`` : '## Top-level keys';
  const intro = description ? `${description}\n\n` : '';
  const lines = rows.map((r) => `| \`${r.key}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`);
  return `${heading}\n\n${intro}| key | type | default | description |\n| --- | --- | --- | --- |\n${lines.join('\n')}\n`;
}

/** The kinds of a tagged union of documented objects (by their `kind` constant), if it is one. */
function variantsOf(schema: JsonSchema): [string, DocumentedObject][] | undefined {
  const options = schema.oneOf ?? schema.anyOf;
  if (!options?.length) return undefined;
  const variants = options.map((o) => [o.properties?.kind?.const, o] as const);
  if (!variants.every(([tag, o]) => typeof tag === 'string' && isDocumentedObject(o))) return undefined;
  return variants as [string, DocumentedObject][];
}

/** A readable type: `integer, 1–600`, `"web" \| "native"`, `list of string`, `{ keys: … }`. */
function typeName(schema: JsonSchema): string {
  const options = schema.oneOf ?? schema.anyOf;
  if (options) return options.map(typeName).join(' or ');
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (schema.enum) return schema.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' or ');
  switch (schema.type) {
    case 'integer':
    case 'number': {
      const range = schema.minimum !== undefined && schema.maximum !== undefined ? `, ${schema.minimum}–${schema.maximum}` : '';
      return `${schema.type}${range}`;
    }
    case 'array': {
      const item = schema.items ? typeName(schema.items) : 'any';
      const atLeast = schema.minItems ? `, at least ${schema.minItems}` : '';
      return `list of ${item}${atLeast}`;
    }
    case 'object': {
      if (!schema.properties) return 'object';
      const keys = Object.entries(schema.properties).map(([k, v]) => `${k}: ${typeName(v)}`);
      if (typeof schema.additionalProperties === 'object') keys.push('…'); // open to more keys
      return `{ ${keys.join(', ')} }`;
    }
    default:
      return schema.type ?? 'any';
  }
}

function defaultText(value: unknown, required: boolean): string {
  if (value !== undefined) return `\`${JSON.stringify(value)}\``;
  return required ? '**required**' : '—';
}

/** Escapes a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function main(argv: string[]): number {
  const rendered = renderConfigDocs();
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(CONFIG_DOCS_PATH, 'utf8');
    } catch {
      // a missing file is stale too
    }
    if (current === rendered) return 0;
    process.stderr.write(`${CONFIG_DOCS_PATH} is out of date: run \`npm run docs\`\n`);
    return 1;
  }
  writeFileSync(CONFIG_DOCS_PATH, rendered);
  process.stdout.write(`wrote ${CONFIG_DOCS_PATH}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
