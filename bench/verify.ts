/**
 * bench/verify: how fast the verifier checks tokens, next to a bare `jose.jwtVerify` loop on
 * the same tokens in the same run (target: at least 0.9 of it with revocation checking on).
 *
 *   npm run bench:verify            (builds first; prints a table and writes bench/results/verify.json)
 *
 * Method: a real authorization server (SQLite) issues 256 client-credentials tokens; the
 * verifier (with `cache: false`, so every signature is checked) follows its revocation feed, which holds a revoked token, grant and subject (so every
 * check hashes the token's claims to look them up); each contender verifies the tokens round-robin for a
 * fixed time, in alternating rounds so both see the same machine state; we report the median
 * of each contender's rounds and, as the ratio, the median of the per-round ratios (adjacent
 * rounds share the machine's state, which on a shared VM drifts more than the difference we
 * measure). The bare loop does what every correct verifier must at least do: signature
 * (local JWKS), iss, aud, typ, exp. Then the verifier as configured by default, whose
 * verified-token cache answers repeated tokens (target: 40 000 a second on one core), and a
 * cached token revoked on the feed, which must be refused within a second all the same.
 */
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { createVerifier } from '../src/verifier/index.js';
import { startServer } from '../test/helpers/server.js';
import { NOTES, SECRET } from '../test/helpers/fixtures.js';

const ROUNDS = Number(process.env.ROUNDS ?? 12);
const ROUND_MS = Number(process.env.ROUND_MS ?? 1000);
const TOKENS = 256;

async function opsPerSecond(label: string, tokens: string[], verify: (token: string) => Promise<unknown>): Promise<number> {
  let n = 0;
  const started = performance.now();
  const deadline = started + ROUND_MS;
  while (performance.now() < deadline) {
    for (let i = 0; i < 64; i++) await verify(tokens[(n + i) % tokens.length]!);
    n += 64;
  }
  const rate = n / ((performance.now() - started) / 1000);
  if (process.env.VERBOSE) console.error(`${label}: ${rate.toFixed(0)}/s`);
  return rate;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const t = await startServer({ store: 'sqlite', config: { logLevel: 'silent' } });
  try {
    const tokens: string[] = [];
    for (let i = 0; i < TOKENS; i++) {
      const res = await fetch(t.url('/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTES, scope: 'notes:read' }),
      });
      tokens.push(((await res.json()) as { access_token: string }).access_token);
    }
    const jwks = (await (await fetch(t.url('/jwks'))).json()) as JSONWebKeySet;
    const keys = createLocalJWKSet(jwks);
    const bare = (token: string) => jwtVerify(token, keys, { issuer: t.issuer, audience: NOTES, typ: 'at+jwt', algorithms: ['ES256'] });

    // revocations of every kind are on the feed, as on a server in use: the verifier hashes a
    // token's jti, grant id and subject for every check (none of these tokens is revoked)
    const { publisher } = t.server;
    await Promise.all([
      publisher.token('a-revoked-jti', Math.floor(Date.now() / 1000) + 3600),
      publisher.grant('a-revoked-grant'),
      publisher.subject('a-signed-out-subject'),
    ]);
    // every signature checked (cache: false), against the bare loop; and as configured by
    // default, where a token seen before is not checked again (MCP clients repeat theirs)
    const uncached = createVerifier({ issuer: t.issuer, resource: NOTES, cache: false });
    const verifier = createVerifier({ issuer: t.issuer, resource: NOTES });
    try {
      for (const v of [uncached, verifier]) {
        await v.verifyAccessToken(tokens[0]!); // discovery, JWKS and the feed's backlog
        const revoked = v.revocationStatus()?.revoked;
        if (!revoked || revoked.tokens < 1 || revoked.grants < 1 || revoked.subjects < 1) throw new Error(`the feed's revocations did not arrive: ${JSON.stringify(revoked)}`);
      }
      const ours = (token: string) => uncached.verifyAccessToken(token);
      const cached = (token: string) => verifier.verifyAccessToken(token);
      await opsPerSecond('warm-up bare', tokens, bare);
      await opsPerSecond('warm-up verifier', tokens, ours);
      await opsPerSecond('warm-up cached verifier', tokens, cached);

      const bareRates: number[] = [];
      const ourRates: number[] = [];
      const cachedRates: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? ['bare', 'ours', 'cached'] : ['cached', 'ours', 'bare'];
        for (const which of order) {
          if (which === 'bare') bareRates.push(await opsPerSecond('bare jose.jwtVerify', tokens, bare));
          else if (which === 'ours') ourRates.push(await opsPerSecond('verifier (revocation on, every signature)', tokens, ours));
          else cachedRates.push(await opsPerSecond('verifier (defaults: repeat tokens cached)', tokens, cached));
        }
      }
      // the cache never hides a revocation: a cached token revoked now is refused within a second
      const victim = tokens[1]!;
      await verifier.verifyAccessToken(victim);
      const { jti } = JSON.parse(Buffer.from(victim.split('.')[1]!, 'base64url').toString()) as { jti: string };
      await publisher.token(jti, Math.floor(Date.now() / 1000) + 3600);
      const revokedAt = performance.now();
      let refusedAfterMs = NaN;
      while (performance.now() - revokedAt < 1000) {
        const refused = await verifier.verifyAccessToken(victim).then(
          () => false,
          () => true,
        );
        if (refused) {
          refusedAfterMs = performance.now() - revokedAt;
          break;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      const result = {
        date: new Date().toISOString(),
        node: process.version,
        cpu: cpus()[0]?.model ?? 'unknown',
        cores: availableParallelism(),
        rounds: ROUNDS,
        roundMs: ROUND_MS,
        tokens: TOKENS,
        bareJoseJwtVerify: Math.round(median(bareRates)),
        verifierWithRevocation: Math.round(median(ourRates)),
        ratio: Number(median(ourRates.map((rate, i) => rate / bareRates[i]!)).toFixed(3)),
        target: 0.9,
        cachedRepeatTokens: Math.round(median(cachedRates)),
        cachedTarget: 40_000,
        cachedRevokedTokenRefusedAfterMs: Number(refusedAfterMs.toFixed(1)),
      };
      console.log(
        [
          `tokens checked per second (median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms, one core, Node ${process.version})`,
          `  bare jose.jwtVerify                          ${result.bareJoseJwtVerify}`,
          `  verifier, revocation on, every signature     ${result.verifierWithRevocation}`,
          `  ratio (median per round)                     ${result.ratio}   (target ≥ ${result.target})`,
          `  verifier as configured by default, repeated tokens (verified-token cache)  ${result.cachedRepeatTokens}   (target ≥ ${result.cachedTarget})`,
          `  a cached token revoked: refused after ${result.cachedRevokedTokenRefusedAfterMs} ms`,
        ].join('\n'),
      );
      mkdirSync('bench/results', { recursive: true });
      writeFileSync('bench/results/verify.json', `${JSON.stringify(result, null, 2)}\n`);
      if (result.ratio < result.target || result.cachedRepeatTokens < result.cachedTarget || !(refusedAfterMs < 1000)) process.exitCode = 1;
    } finally {
      await Promise.all([verifier.close(), uncached.close()]);
    }
  } finally {
    await t.stop();
  }
}

await main();
