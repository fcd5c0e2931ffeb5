/**
 * The container image, without a Docker engine: the Dockerfile's stages replayed in clean
 * temporary folders, read from the Dockerfile itself (its COPY, RUN, ENV, ENTRYPOINT, CMD and
 * HEALTHCHECK lines), so forgetting a file there fails here.
 *
 * Replayed: every COPY (sources from the repository, minus what .dockerignore leaves out of the
 * build context; `--from=build` from the build folder); the build stage's RUN commands, run as
 * written in the build folder (`npx tsc …`, `npm prune --omit=dev …`, with npm offline); the final
 * stage's ENV; ENTRYPOINT + CMD started from the runtime folder with that environment plus
 * ISSUER, PORT, ADMIN_PORT, a temporary DATA_DIR, a mounted config file (MCP_AUTHZ_CONFIG) and
 * secrets as files (signing keys, cookie keys, a client secret); the HEALTHCHECK command against it.
 * `npm ci` runs as written, from npm's cache (`--offline`), with `--ignore-scripts`: the tree's
 * one install script, better-sqlite3's native addon build (90 s or more of compiling here, with
 * no network for a prebuilt binary), is replaced by its result copied from the repository's own
 * install (same lockfile, same platform); MCP_AUTHZ_IMAGE_TEST_NPM_CI=1 runs the scripts too
 * (with TEST_TIMEOUT_MS=600000: the runner's 120 s bound applies to the whole file).
 * Not replayed: the base image (this host's Node runs it, not node:24-bookworm-slim); `apt-get`
 * (this host has its own toolchain). USER, VOLUME and the final `mkdir/chown /data` (root-only) are
 * checked for their values, not executed; HOST and ADMIN_HOST are 127.0.0.1 here rather than
 * 0.0.0.0, to keep the test off other interfaces.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { execForm, parseCopy, parseDockerfile, parseEnv, type Stage } from './dockerfile.js';
import { freePort } from '../helpers/redis.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const FULL_NPM_CI = process.env.MCP_AUTHZ_IMAGE_TEST_NPM_CI === '1';
const SECRET = 'an-image-test-client-secret';

/** Docker's .dockerignore matching (filepath.Match per pattern, last match wins, `!` re-includes). */
function isIgnored(path: string): boolean {
  let out = false;
  for (const raw of ignored) {
    const negate = raw.startsWith('!');
    const pattern = negate ? raw.slice(1) : raw;
    const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}(/.*)?$`);
    if (regex.test(path)) out = !negate;
  }
  return out;
}

/** Copies `source` (relative to the repository) to `dest` as Docker's COPY does, skipping ignored paths. */
function copyFromContext(source: string, dest: string): void {
  const from = join(ROOT, source);
  assert.ok(existsSync(from) && !isIgnored(source), `COPY ${source}: not in the build context`);
  cpSync(from, dest, { recursive: true, filter: (path) => !isIgnored(relative(ROOT, path)) });
}

function stage(name: string): Stage {
  const found = dockerfile.find((s) => s.name === name);
  assert.ok(found, `no stage ${name}`);
  return found;
}

function workdir(s: Stage): string {
  const dirs = s.instructions.filter((i) => i.keyword === 'WORKDIR').map((i) => i.args);
  assert.equal(dirs.length, 1, `stage ${s.name}: one WORKDIR`);
  return dirs[0]!;
}

/** Where a COPY destination lands: relative to the stage's folder, a trailing slash meaning "into". */
function destination(folder: string, containerDir: string, dest: string, source: string): string {
  const inside = dest.startsWith('/') ? relative(containerDir, dest) : dest;
  assert.ok(!inside.startsWith('..'), `COPY to ${dest}: outside ${containerDir}`);
  return inside.endsWith('/') || inside === '.' ? join(folder, inside, basename(source)) : join(folder, inside);
}

function run(command: string, cwd: string, timeout: number): void {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, npm_config_offline: 'true', npm_config_update_notifier: 'false' };
  const result = spawnSync('sh', ['-c', command], { cwd, env, encoding: 'utf8', timeout });
  assert.equal(result.status, 0, `RUN ${command} failed (${result.signal ?? result.status}):\n${result.stdout}\n${result.stderr}`);
}


describe('the image, replayed from the Dockerfile', () => {
  const work = mkdtempSync(join(tmpdir(), 'mcp-authz-image-'));
  const build = join(work, 'build');
  const runtime = join(work, 'runtime');
  const data = join(work, 'data');
  const secrets = join(work, 'secrets');
  let child: ChildProcess | undefined;
  let stderr = '';
  let issuer = '';
  let imageEnv: Record<string, string> = {};
  let serverEnv: NodeJS.ProcessEnv = {};

  before(() => {
    for (const dir of [build, runtime, data, secrets]) mkdirSync(dir);
  });
  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('has a build stage and a Node 24 slim runtime stage running as a numeric non-root user', () => {
    assert.equal(dockerfile.length, 2);
    assert.equal(dockerfile[0]!.name, 'build');
    for (const s of dockerfile) assert.equal(s.from, 'node:24-bookworm-slim');
    const final = dockerfile[1]!;
    const user = final.instructions.filter((i) => i.keyword === 'USER').map((i) => i.args);
    assert.equal(user.length, 1);
    assert.match(user[0]!, /^[1-9]\d*(:\d+)?$/, 'USER is numeric (runAsNonRoot can check it) and not 0');
    assert.deepEqual(final.instructions.filter((i) => i.keyword === 'VOLUME').map((i) => i.args), ['["/data"]']);
    imageEnv = Object.assign({}, ...final.instructions.filter((i) => i.keyword === 'ENV').map((i) => parseEnv(i.args))) as Record<string, string>;
    assert.equal(imageEnv.DATA_DIR, '/data');
    assert.equal(imageEnv.NODE_ENV, 'production');
    assert.equal(imageEnv.ADMIN_HOST, '0.0.0.0', 'the kubelet reaches the admin listener on the pod address');
  });

  it('build stage: COPY, npm ci, build, prune to production dependencies', { timeout: 360_000 }, () => {
    const s = stage('build');
    const dir = workdir(s);
    for (const instruction of s.instructions) {
      if (instruction.keyword === 'COPY') {
        const copy = parseCopy(instruction.args);
        assert.equal(copy.from, undefined, 'the build stage copies from the context only');
        for (const source of copy.sources) copyFromContext(source, destination(build, dir, copy.dest, source));
      } else if (instruction.keyword === 'RUN') {
        const command = instruction.args;
        if (/^apt-get /.test(command)) continue; // system packages: this host has its own toolchain
        if (/^npm ci\b/.test(command) && !FULL_NPM_CI) {
          // the real install, from npm's cache, without install scripts; the one script of the
          // tree (better-sqlite3's addon build) is replaced by its result in the repository's install
          run(`${command} --offline --ignore-scripts`, build, 120_000);
          cpSync(join(realpathSync(join(ROOT, 'node_modules')), 'better-sqlite3', 'build'), join(build, 'node_modules', 'better-sqlite3', 'build'), { recursive: true });
          continue;
        }
        run(FULL_NPM_CI && /^npm ci\b/.test(command) ? `${command} --offline` : command, build, 300_000);
      } else {
        assert.ok(['WORKDIR'].includes(instruction.keyword), `Dockerfile:${instruction.line}: ${instruction.keyword} in the build stage is not replayed`);
      }
    }
    assert.ok(existsSync(join(build, 'dist/src/main.js')), 'the build produced dist/src/main.js');
  });

  it('runtime stage: only what the final stage COPYs', () => {
    const s = dockerfile[1]!;
    const dir = workdir(s);
    for (const instruction of s.instructions) {
      if (instruction.keyword === 'COPY') {
        const copy = parseCopy(instruction.args);
        for (const source of copy.sources) {
          const target = destination(runtime, dir, copy.dest, source);
          if (copy.from === undefined) copyFromContext(source, target);
          else {
            assert.equal(copy.from, 'build');
            const inBuild = relative(workdir(stage('build')), source);
            assert.ok(!inBuild.startsWith('..'), `COPY --from=build ${source}: outside the build WORKDIR`);
            cpSync(join(build, inBuild), target, { recursive: true, verbatimSymlinks: true });
          }
        }
      } else if (instruction.keyword === 'RUN') {
        assert.match(instruction.args, /^mkdir -p \/data && chown \d+:\d+ \/data$/, `Dockerfile:${instruction.line}: RUN in the final stage is not replayed`);
      }
    }
    const top = readdirSync(runtime).sort();
    assert.deepEqual(top, ['dist', 'node_modules', 'package.json', 'views']);
    for (const absent of ['dist/test', 'dist/bench', 'dist/scripts']) assert.ok(!existsSync(join(runtime, absent)), `${absent} is not in the image`);
  });

  it('holds no devDependency', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.keys(pkg.devDependencies).filter((name) => lock.packages[`node_modules/${name}`]?.dev === true);
    // a control: packages that are surely dev-only are seen as such (not @types/node: node-saml's
    // own @types dependencies bring it into the production install)
    assert.ok(devOnly.includes('typescript') && devOnly.includes('playwright-core') && devOnly.includes('fast-check'));
    const present = devOnly.filter((name) => existsSync(join(runtime, 'node_modules', name)));
    assert.deepEqual(present, [], 'devDependencies in the runtime node_modules');
    for (const name of ['oidc-provider', 'better-sqlite3', 'ioredis', 'koa', 'jose']) assert.ok(existsSync(join(runtime, 'node_modules', name)), name);
  });

  it('starts from the runtime folder with the image environment: discovery, a token, the views', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const adminPort = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    writeFileSync(join(secrets, 'nightly-report'), `${SECRET}\n`);
    writeFileSync(join(secrets, 'cookie-keys'), `${randomBytes(32).toString('base64url')}\n`);
    const keys = await Promise.all(
      (['ES256', 'RS256'] as const).map(async (alg) => ({ ...(await exportJWK((await generateKeyPair(alg, { extractable: true })).privateKey)), alg, kid: `image-${alg}` })),
    );
    writeFileSync(join(secrets, 'signing-keys.json'), JSON.stringify({ keys }));
    const configFile = join(work, 'config.yaml');
    writeFileSync(
      configFile,
      [
        'resources:',
        '  - uri: https://notes.example.com/mcp',
        '    name: Notes',
        '    scopes:',
        '      notes:read: { description: Read your notes }',
        'clients:',
        '  - client_id: nightly-report',
        `    client_secret_file: ${join(secrets, 'nightly-report')}`,
        '    grant_types: [client_credentials]',
        '    scope: notes:read',
        '',
      ].join('\n'),
    );
    const final = dockerfile[1]!;
    const entrypoint = execForm(final.instructions.find((i) => i.keyword === 'ENTRYPOINT')!.args);
    const cmd = execForm(final.instructions.find((i) => i.keyword === 'CMD')!.args);
    const [program, ...args] = [...entrypoint, ...cmd];
    assert.equal(program, 'node');
    assert.deepEqual(args, ['dist/src/main.js', 'serve']);
    serverEnv = {
      PATH: process.env.PATH,
      ...imageEnv,
      HOST: '127.0.0.1',
      ADMIN_HOST: '127.0.0.1',
      ISSUER: issuer,
      PORT: String(port),
      ADMIN_PORT: String(adminPort),
      DATA_DIR: data,
      MCP_AUTHZ_CONFIG: configFile,
      COOKIE_KEYS_FILE: join(secrets, 'cookie-keys'),
      SIGNING_KEYS_FILE: join(secrets, 'signing-keys.json'),
      LOG_LEVEL: 'warn',
    };
    const started = spawn(process.execPath, args, { cwd: runtime, env: serverEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    started.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      assert.equal(started.exitCode, null, `the server exited ${started.exitCode}: ${stderr}`);
      if (await fetch(`${issuer}/healthz`).then((r) => r.ok, () => false)) break;
      assert.ok(Date.now() < deadline, `no answer within 30 s: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const discovery = await fetch(`${issuer}/.well-known/oauth-authorization-server`);
    assert.equal(discovery.status, 200);
    const metadata = (await discovery.json()) as { issuer: string; token_endpoint: string };
    assert.equal(metadata.issuer, issuer);

    const token = await fetch(metadata.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`nightly-report:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: 'https://notes.example.com/mcp', scope: 'notes:read' }),
    });
    assert.equal(token.status, 200, await token.clone().text());
    const { access_token: accessToken } = (await token.json()) as { access_token: string };
    const { protectedHeader } = await jwtVerify(accessToken, createRemoteJWKSet(new URL(`${issuer}/jwks`)), { issuer, audience: 'https://notes.example.com/mcp' });
    assert.equal(protectedHeader.kid, 'image-ES256', 'signed with the key from SIGNING_KEYS_FILE');

    const css = await fetch(`${issuer}/static/app.css`);
    assert.equal(css.status, 200, 'views/ is where the server looks for it');
    assert.ok(existsSync(join(data, 'mcp-authz.sqlite')), 'the store is in DATA_DIR');
    assert.ok(!existsSync(join(runtime, 'data')), 'nothing written in the application folder');
  });

  it('HEALTHCHECK: fails when nothing listens, passes against the running server', { timeout: 30_000 }, () => {
    const final = dockerfile[1]!;
    const healthcheck = final.instructions.find((i) => i.keyword === 'HEALTHCHECK');
    assert.ok(healthcheck, 'the image has a HEALTHCHECK');
    const cmdAt = healthcheck.args.indexOf('CMD ');
    assert.ok(cmdAt >= 0);
    const [program, ...args] = execForm(healthcheck.args.slice(cmdAt + 4));
    assert.equal(program, 'node');
    assert.match(args.join(' '), /ADMIN_PORT/, 'it checks the admin listener');
    const check = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, args, { cwd: runtime, env, encoding: 'utf8', timeout: 10_000 });

    assert.notEqual(check({ ...serverEnv, ADMIN_PORT: '1' }).status, 0, 'nothing listens on port 1: unhealthy');
    assert.ok(child && child.exitCode === null, 'the server is running');
    const result = check(serverEnv);
    assert.equal(result.status, 0, `HEALTHCHECK against ADMIN_PORT ${serverEnv.ADMIN_PORT}: ${result.stderr}`);
  });

  it('the admin listener answers readiness and metrics (prom-client is in the production install)', { timeout: 30_000 }, async () => {
    const admin = `http://127.0.0.1:${serverEnv.ADMIN_PORT}`;
    assert.equal((await fetch(`${admin}/readyz`)).status, 200);
    const metrics = await fetch(`${admin}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^# HELP /m);
    assert.equal((await fetch(`${issuer}/metrics`)).status, 404, 'metrics are not on the public listener');
  });
});
