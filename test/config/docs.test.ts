import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG_DOCS_PATH, renderConfigDocs } from '../../scripts/generate-config-docs.js';

test('docs/configuration.md matches the config schema', () => {
  let committed = '';
  try {
    committed = readFileSync(CONFIG_DOCS_PATH, 'utf8');
  } catch {
    // missing: reported below
  }
  assert.ok(committed === renderConfigDocs(), 'docs/configuration.md is out of date with src/config/schema.ts: run `npm run docs`');
});

test('the docs document every level of the schema with dotted keys', () => {
  const docs = renderConfigDocs();
  for (const heading of ['## Top-level keys', '## `resources[]`', '## `resources[].scopes.<name>`', '## `clients[]`', '## `ttl`', '## `keys`', '## `deviceFlow`', '## Example']) {
    assert.ok(docs.includes(`\n${heading}\n`), heading);
  }
  assert.match(docs, /\| `resources\[\]\.scopes\.<name>\.dangerous` \| boolean \| `false` \| Marks a scope/);
  assert.match(docs, /\| `port` \| integer, 0–65535 \| `4000` \| TCP port/);
  assert.match(docs, /\| `resources\[\]\.uri` \| string \| \*\*required\*\* \|/);
  assert.match(docs, /\| `resources` \| list of objects \(see `resources\[\]`\) \| `\[\]` \|/);
  for (const env of ['PORT', 'HOST', 'ISSUER', 'DATA_DIR', 'REDIS_URL', 'LOG_LEVEL', 'TRUST_PROXY', 'MCP_AUTHZ_CONFIG', '--config FILE']) {
    assert.ok(docs.includes(`\`${env}\``), env);
  }
});
