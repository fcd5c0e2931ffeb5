/**
 * `npm run bench`: every benchmark, one after another, each printing its table and writing
 * bench/results/<name>.json; exits non-zero when one missed its target (or failed).
 *
 *   verify        the verifier against a bare jose.jwtVerify loop, and repeated tokens (core 0)
 *   example       the example MCP server with and without the verifier (one process)
 *   issuance      client credentials → JWT against a bare oidc-provider, SQLite and Redis
 *   revocation    RFC 7009 revocation → refused by a verifier in another process, SQLite and Redis
 *   flows         authorization code flows per second and device polling, against a bare oidc-provider
 *   size          issuance to a registered client with up to a million grants and clients in the store
 *   soak          ten minutes of issuance (per-minute tokens/s), then ten at half capacity (open loop, memory)
 *
 * `npm run bench -- issuance revocation` runs only those. Not part of `npm test`.
 */
import { spawnSync } from 'node:child_process';
import { pinned } from './harness.js';

const BENCHMARKS: Record<string, string[]> = {
  // the driver is the benchmark: one core for it alone
  verify: pinned(0, [process.execPath, 'dist/bench/verify.js']),
  example: [process.execPath, 'dist/bench/example-server.js'],
  // these pin their servers to core 0 and their load to core 1: the driver goes with the load
  issuance: pinned(1, [process.execPath, 'dist/bench/issuance.js']),
  revocation: pinned(1, [process.execPath, 'dist/bench/revocation.js']),
  flows: pinned(1, [process.execPath, 'dist/bench/flows.js']),
  size: pinned(1, [process.execPath, 'dist/bench/size.js']),
  soak: pinned(1, [process.execPath, 'dist/bench/soak.js']),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in BENCHMARKS));
if (unknown.length) {
  console.error(`unknown benchmark ${unknown.join(', ')}; there are: ${Object.keys(BENCHMARKS).join(', ')}`);
  process.exit(2);
}
const failed: string[] = [];
for (const [name, [program, ...args]] of Object.entries(BENCHMARKS)) {
  if (wanted.length && !wanted.includes(name)) continue;
  console.log(`\n== ${name}`);
  const result = spawnSync(program!, args, { stdio: 'inherit' });
  if (result.status !== 0) failed.push(name);
}
if (failed.length) {
  console.log(`\nmissed a target or failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
