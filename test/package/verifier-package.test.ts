/**
 * What MCP server authors install: the packed package, installed without the server's
 * optional dependencies, imports `mcp-authz/verifier` and verifies nothing of koa,
 * oidc-provider, SQLite or Redis is needed (nor installed) for it. Plus a static check
 * of the built verifier's import graph.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const ROOT = process.cwd();
const SERVER_SIDE = ['koa', 'oidc-provider', 'better-sqlite3', 'ioredis', '@koa/router', 'koa-mount', 'eta', 'pino', 'prom-client', 'yaml'];
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Node built-ins the verifier may load with a dynamic import() behind a runtime check. */
const NODE_ONLY_DYNAMIC = ['node:fs/promises', 'node:os'];
/** Specifiers imported with import(), and those imported statically. */
const dynamic = new Set<string>();
const staticImports = new Set<string>();

function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const found = new Set<string>();
  for (const m of source.matchAll(/\b(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm)) {
    found.add((m[1] ?? m[2] ?? m[3])!);
    if (m[2]) dynamic.add(m[2]);
    else staticImports.add((m[1] ?? m[3])!);
  }
  return [...found];
}

describe('the verifier as MCP servers install it', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-authz-pack-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('its built import graph reaches only jose, zod, canonicalize and its own files', () => {
    const entry = resolve(ROOT, 'dist/src/verifier/index.js');
    const seen = new Set<string>();
    const external = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of importsOf(file)) {
        if (spec.startsWith('.')) {
          const target = resolve(dirname(file), spec);
          assert.ok(target.startsWith(resolve(ROOT, 'dist/src/verifier')), `${file} imports ${spec}, outside the verifier`);
          walk(target);
        } else external.add(spec);
      }
    };
    walk(entry);
    assert.ok(seen.size > 3, 'walked the verifier files');
    // canonicalize: RFC 8785 for the arguments digest; node:fs/promises and node:os only through
    // import() behind a runtime check (the tool call spool, src/verifier/report-spool.ts)
    const allowed = (spec: string) => spec === 'jose' || spec.startsWith('jose/') || spec === 'zod' || spec.startsWith('zod/') || spec === 'canonicalize';
    for (const spec of external) assert.ok(allowed(spec) || (dynamic.has(spec) && !staticImports.has(spec) && NODE_ONLY_DYNAMIC.includes(spec)), `verifier imports ${spec}`);
  });

  it('npm pack → install without optional dependencies → import mcp-authz/verifier', { timeout: 180_000 }, () => {
    const packed = execFileSync(npm, ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
    const tarball = join(dir, packed);
    assert.ok(existsSync(tarball), tarball);
    const app = join(dir, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'an-mcp-server', version: '1.0.0', type: 'module', private: true }));
    execFileSync(npm, ['install', '--omit=optional', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: app, stdio: 'pipe' });

    const installed = readdirSync(join(app, 'node_modules'));
    for (const name of SERVER_SIDE) {
      const [scope, pkg] = name.startsWith('@') ? name.split('/') : [undefined, name];
      const present = scope ? existsSync(join(app, 'node_modules', scope, pkg!)) : installed.includes(name);
      assert.ok(!present, `${name} was installed for the verifier`);
    }
    const packageFiles = readdirSync(join(app, 'node_modules', 'mcp-authz', 'dist'));
    assert.ok(!packageFiles.includes('test'), 'tests are not shipped');

    const probe = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import('mcp-authz/verifier');
         const v = m.createVerifier({ issuer: 'https://auth.example.com', resource: 'https://notes.example.com/mcp', revocation: { onError() {} } });
         // without the MCP SDK installed, a refusal is a plain VerifierError
         const refusal = await v.verifyAccessToken('not-a-jwt').catch((e) => e);
         console.log(JSON.stringify({ exports: Object.keys(m).sort(), metadataPath: v.metadataPath, refusal: [refusal.name, refusal.code, refusal instanceof m.VerifierError] }));
         await v.close();`,
      ],
      { cwd: app, encoding: 'utf8' },
    );
    assert.equal(probe.status, 0, probe.stderr);
    const { exports, metadataPath, refusal } = JSON.parse(probe.stdout) as { exports: string[]; metadataPath: string; refusal: unknown[] };
    assert.ok(!existsSync(join(app, 'node_modules', '@modelcontextprotocol')), 'the MCP SDK (an optional peer) is not installed');
    assert.deepEqual(refusal, ['VerifierError', 'ERR_TOKEN_MALFORMED', true]);
    assert.ok(exports.includes('createVerifier'));
    assert.equal(metadataPath, '/.well-known/oauth-protected-resource/mcp');

    // the server side says plainly what is missing instead of crashing
    const server = spawnSync(process.execPath, [join(app, 'node_modules', 'mcp-authz', 'dist', 'src', 'main.js'), 'help'], { cwd: app, encoding: 'utf8' });
    assert.equal(server.status, 1);
    assert.match(server.stderr, /optional dependencies/);
    assert.doesNotMatch(server.stderr, /\n\s+at /);
  });
});
