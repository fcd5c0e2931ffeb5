#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner,
// files in parallel. Helpers under dist/test/helpers are not test files. What the tests need
// besides node_modules is checked before the build (scripts/test-requirements.mjs).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
const files = collect('dist/test').filter((f) => filter.length === 0 || filter.some((p) => f.includes(p))).sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = Number(process.env.TEST_CONCURRENCY ?? Math.max(2, availableParallelism()));
// no test or hook waits forever: one that takes longer fails with its name (a test may set a longer
// timeout of its own), and a file whose tests are done exits even if something it started is still open
const timeoutMs = Number(process.env.TEST_TIMEOUT_MS ?? 240_000);
// test processes trust the tests' own CA (test/fixtures/tls), so tests can serve real https on loopback
const env = { ...process.env, NODE_EXTRA_CA_CERTS: 'test/fixtures/tls/ca.pem' };
const result = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, `--test-timeout=${timeoutMs}`, '--test-force-exit', ...files], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
