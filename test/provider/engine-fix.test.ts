/**
 * Our one fix to oidc-provider (src/provider/engine-fix.ts): it applies to the installed engine
 * (an upgrade that changes the code fails here, not silently), the engine loaded through the
 * hook gives every request the same `ctx.oidc` getter and still one OIDCContext per request.
 * (`mcp-authz serve` registers the hook before it loads the engine: src/cli/commands.ts; the
 * tests that run it as a process, test/helpers/serve-process.ts, run the fixed engine.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE_FILE, ENSURE_OIDC, fixEngineSource } from '../../src/provider/engine-fix.js';

const require = createRequire(import.meta.url);
const engineDir = dirname(require.resolve('oidc-provider/package.json'));
const HOOK = fileURLToPath(new URL('../../src/provider/engine-fix-hook.js', import.meta.url));

/**
 * A bare oidc-provider in a child process (with or without the hook) answering two discovery
 * requests; a middleware around the engine reports each request's `ctx.oidc` getter and
 * OIDCContext. Prints { sameGetter, sameContext, contextsPerRequest, status }.
 */
function twoRequests(withFix: boolean) {
  const script = `
    ${withFix ? `const { registerEngineFix } = await import(${JSON.stringify(HOOK)}); registerEngineFix();` : ''}
    const { default: Provider } = await import('oidc-provider');
    const provider = new Provider('http://127.0.0.1', { clients: [] });
    const seen = [];
    provider.use(async (ctx, next) => {
      await next();
      const getter = Object.getOwnPropertyDescriptor(ctx, 'oidc')?.get;
      seen.push({ getter, first: ctx.oidc, again: ctx.oidc, configurable: Object.getOwnPropertyDescriptor(ctx, 'oidc')?.configurable });
    });
    const server = provider.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = 'http://127.0.0.1:' + server.address().port;
    const statuses = [];
    for (let i = 0; i < 2; i++) statuses.push((await fetch(base + '/.well-known/openid-configuration')).status);
    server.close();
    const [a, b] = seen;
    console.log(JSON.stringify({
      statuses,
      getters: seen.every((s) => typeof s.getter === 'function'),
      sameGetter: a.getter === b.getter,
      sameContext: a.first === b.first,
      contextsPerRequest: seen.every((s) => s.first === s.again && s.first.constructor.name === 'OIDCContext'),
      configurable: seen.some((s) => s.configurable),
    }));
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: join(engineDir, '..', '..'), encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as { statuses: number[]; getters: boolean; sameGetter: boolean; sameContext: boolean; contextsPerRequest: boolean; configurable: boolean };
}

describe('the fix to oidc-provider', () => {
  it('applies to the installed engine, exactly once, and to nothing else', () => {
    const source = readFileSync(join(engineDir, 'lib/helpers/initialize_app.js'), 'utf8');
    assert.ok(source.includes(ENSURE_OIDC), `oidc-provider's ensureOIDC changed: review src/provider/engine-fix.ts for this version`);
    const fixed = fixEngineSource(source);
    assert.ok(fixed !== undefined);
    assert.ok(!fixed.includes(ENSURE_OIDC));
    // the rest of the file is untouched
    assert.equal(fixed.slice(0, source.indexOf(ENSURE_OIDC)), source.slice(0, source.indexOf(ENSURE_OIDC)));
    assert.ok(fixed.endsWith(source.slice(source.indexOf(ENSURE_OIDC) + ENSURE_OIDC.length)));
    assert.equal(fixEngineSource('export default 1;\n'), undefined);
    assert.equal(fixEngineSource(`${ENSURE_OIDC}\n${ENSURE_OIDC}`), undefined, 'ambiguous: not fixed');
    assert.ok(ENGINE_FILE.endsWith('initialize_app.js'));
  });

  it('gives every request the same ctx.oidc getter, and each its own OIDCContext, made once', () => {
    const fixed = twoRequests(true);
    assert.deepEqual(fixed.statuses, [200, 200]);
    assert.equal(fixed.getters, true);
    assert.equal(fixed.sameGetter, true);
    assert.equal(fixed.sameContext, false);
    assert.equal(fixed.contextsPerRequest, true);
    assert.equal(fixed.configurable, false, 'ctx.oidc stays a non-configurable accessor, as the engine defines it');
    // and the engine as published makes a getter per request (what the fix is for)
    const stock = twoRequests(false);
    assert.deepEqual(stock.statuses, [200, 200]);
    assert.equal(stock.sameGetter, false);
    assert.equal(stock.contextsPerRequest, true);
  });
});
