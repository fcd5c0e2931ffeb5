/**
 * The application log as an operator gets it from `mcp-authz serve`: JSON lines (pino) on
 * standard output, one per request with the id the client got back as `X-Request-Id`,
 * credentials redacted, the level from `LOG_LEVEL`, and the audit log kept apart — in its own
 * files by default, and alone on standard output (the application log moving to standard
 * error) with `audit.sink: stdout`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../helpers/redis.js';
import { Writable } from 'node:stream';
import { fixtureConfig, NOTES, SECRET } from '../helpers/fixtures.js';
import { serveProcess, type ServeProcess } from '../helpers/serve-process.js';
import { createLogger, CREDENTIAL_KEYS } from '../../src/observability/logger.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

type Line = Record<string, unknown>;
const jsonLines = (text: string): Line[] =>
  text
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Line);

describe('application log', { timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-logs-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(fixtureConfig()));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Starts `serve` with `env`, runs `use` against it, stops it (SIGTERM, so buffered lines are written). */
  async function withServer(name: string, env: NodeJS.ProcessEnv, use: (p: ServeProcess) => Promise<void>, config = configFile): Promise<{ stdout: string; stderr: string; dataDir: string }> {
    const dataDir = join(dir, name);
    const p = await serveProcess({ dataDir, configFile: config, env: { LOG_LEVEL: 'info', ...env } });
    await p.start();
    try {
      await use(p);
    } finally {
      await p.stop('SIGTERM');
    }
    return { ...p.output(), dataDir };
  }

  describe('by default', () => {
    const secrets: string[] = [SECRET, 'a-wrong-secret-of-decent-length'];
    const requestIds: { id: string; path: string; status: number }[] = [];
    let out: { stdout: string; stderr: string; dataDir: string };

    before(async () => {
      out = await withServer('default', {}, async (p) => {
        const request = async (path: string, init: RequestInit = {}) => {
          const res = await fetch(p.url(path), init);
          requestIds.push({ id: res.headers.get('x-request-id')!, path: path.split('?')[0]!, status: res.status });
          return res;
        };
        const issued = await request('/token', {
          method: 'POST',
          headers: { ...FORM, authorization: basic('nightly-report', SECRET) },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'notes:read', resource: NOTES }),
        });
        assert.equal(issued.status, 200);
        secrets.push(((await issued.json()) as { access_token: string }).access_token);
        const refused = await request('/token', {
          method: 'POST',
          headers: { ...FORM, authorization: basic('nightly-report', 'a-wrong-secret-of-decent-length') },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'notes:read', resource: NOTES }),
        });
        assert.equal(refused.status, 401);
        // a query string carrying something secret-looking is never logged
        await request('/.well-known/oauth-authorization-server?code=query-code-not-to-be-logged');
        secrets.push('query-code-not-to-be-logged');
      });
    });

    it('writes JSON lines with level, time, service and message', () => {
      const lines = jsonLines(out.stdout);
      assert.ok(lines.length >= 4, out.stdout);
      assert.equal(out.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('{')).length, 0, 'nothing but JSON on stdout');
      for (const line of lines) {
        assert.equal(typeof line.level, 'number');
        assert.match(String(line.time), /^\d{4}-\d\d-\d\dT/);
        assert.equal(line.service, 'mcp-authz');
        assert.equal(typeof line.msg, 'string');
      }
    });

    it('logs one line per request with the id the client got back', () => {
      const lines = jsonLines(out.stdout).filter((l) => l.msg === 'request');
      for (const { id, path, status } of requestIds) {
        assert.match(id, /^[0-9a-f-]{36}$/);
        const line = lines.find((l) => l.requestId === id);
        assert.ok(line, `a request line for ${path}`);
        assert.equal(line.path, path, 'the path, without its query');
        assert.equal(line.status, status);
      }
    });

    it('never holds a secret, a token or a query string', () => {
      for (const secret of secrets) {
        assert.ok(!out.stdout.includes(secret), 'not in the application log');
        assert.ok(!out.stderr.includes(secret), 'not on standard error');
      }
    });

    it('keeps the audit log apart: audit records in their files, none in the application log', () => {
      assert.ok(jsonLines(out.stdout).every((l) => !('audit' in l)), 'no audit record on stdout');
      const audit = jsonLines(readFileSync(join(out.dataDir, 'audit', 'audit.jsonl'), 'utf8'));
      assert.ok(audit.some((r) => r.event === 'token.issued'));
      assert.ok(audit.every((r) => r.audit === 1 && !('msg' in r) && !('level' in r)), 'no application log line in the audit file');
    });
  });

  it('takes its level from LOG_LEVEL', async () => {
    const quiet = await withServer('warn', { LOG_LEVEL: 'warn' }, async (p) => {
      assert.equal((await fetch(p.url('/.well-known/oauth-authorization-server'))).status, 200);
    });
    assert.ok(jsonLines(quiet.stdout).every((l) => (l.level as number) >= 40), 'nothing below warn');
    const verbose = await withServer('debug', { LOG_LEVEL: 'debug' }, async (p) => {
      assert.equal((await fetch(p.url('/.well-known/oauth-authorization-server'))).status, 200);
    });
    assert.ok(jsonLines(verbose.stdout).some((l) => l.msg === 'request' && l.level === 30));
  });

  it('refuses a LOG_LEVEL it does not know, naming the setting', () => {
    const run = spawnSync(process.execPath, ['dist/src/main.js', '--config', configFile, 'serve'], {
      env: { ...process.env, LOG_LEVEL: 'loud', PORT: '0', ADMIN_PORT: '0', DATA_DIR: join(dir, 'bad-level') },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(run.status, 78, 'EX_CONFIG');
    assert.match(run.stderr, /logLevel: Invalid option/);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });

  it('with audit.sink stdout, standard output holds the audit records only and the application log goes to standard error', async () => {
    const stdoutConfig = join(dir, 'stdout-sink.json');
    writeFileSync(stdoutConfig, JSON.stringify({ ...fixtureConfig(), audit: { sink: 'stdout' } }));
    const out = await withServer(
      'stdout-sink',
      {},
      async (p) => {
        const issued = await fetch(p.url('/token'), {
          method: 'POST',
          headers: { ...FORM, authorization: basic('nightly-report', SECRET) },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'notes:read', resource: NOTES }),
        });
        assert.equal(issued.status, 200);
      },
      stdoutConfig,
    );
    const audit = jsonLines(out.stdout);
    assert.ok(audit.some((r) => r.event === 'token.issued'), out.stdout);
    assert.ok(audit.every((r) => r.audit === 1 && !('msg' in r)), 'standard output: audit records only');
    assert.equal(out.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('{')).length, 0);
    const app = jsonLines(out.stderr);
    assert.ok(app.some((l) => l.msg === 'request' && l.path === '/token'), 'the application log is on standard error');
    assert.ok(app.every((l) => !('audit' in l)));
  });
});

describe('a log reader that went away', { timeout: 60_000 }, () => {
  it('does not keep the server from stopping on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-logs-gone-'));
    const configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(fixtureConfig()));
    const port = await freePort();
    const child = spawn(process.execPath, ['dist/src/main.js', '--config', configFile, 'serve'], {
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', ISSUER: `http://127.0.0.1:${port}`, ADMIN_PORT: '0', DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'info', MCP_AUTHZ_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      let up = false;
      for (let i = 0; i < 200 && !up; i++) {
        up = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
        if (!up) await sleep(50);
      }
      assert.ok(up, 'serve started');
      // whoever read its standard output is gone (a log shipper that died), with a request's line still buffered
      child.stdout!.destroy();
      assert.equal((await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`)).status, 200);
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      child.kill('SIGTERM');
      const [code] = await Promise.race([exited, sleep(20_000).then(() => [undefined] as const)]);
      assert.equal(code, 0, 'exited 0 within 20 s');
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('redaction', () => {
  it('censors every credential field, at the top level and one level down', () => {
    let text = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        text += String(chunk);
        done();
      },
    });
    const log = createLogger('info', sink);
    const fields = ['password', 'secret', 'client_secret', 'token', 'code', 'authorization', 'cookie', 'refresh_token', 'access_token', 'user_code', 'device_code'];
    const top = Object.fromEntries(fields.map((f) => [f, `top-${f}-value`]));
    const nested = Object.fromEntries(fields.map((f) => [f, `nested-${f}-value`]));
    log.info({ ...top, body: nested, headers: { authorization: 'Bearer header-value', cookie: 'sid=header-cookie' }, clientId: 'kept' }, 'a line');
    for (const f of fields) {
      assert.ok(!text.includes(`top-${f}-value`), `${f} redacted`);
      assert.ok(!text.includes(`nested-${f}-value`), `body.${f} redacted`);
    }
    assert.ok(!text.includes('header-value') && !text.includes('header-cookie'));
    const line = JSON.parse(text) as Record<string, unknown>;
    assert.equal(line.password, '[redacted]');
    assert.equal(line.clientId, 'kept', 'identifiers stay');
    for (const f of fields) assert.ok(CREDENTIAL_KEYS.has(f), `${f} is a credential key`);
  });

  /** Everything `log` wrote while `use` ran, as text. */
  function capture(use: (log: ReturnType<typeof createLogger>) => void): string {
    let text = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        text += String(chunk);
        done();
      },
    });
    use(createLogger('debug', sink));
    return text;
  }

  it('censors credentials at any depth: 2, 3 and 5 levels down, in arrays, errors and child bindings', () => {
    const nest = (depth: number, leaf: Record<string, unknown>): Record<string, unknown> => (depth === 0 ? leaf : { [`level${depth}`]: nest(depth - 1, leaf) });
    const deep = {
      two: { request: { password: 'two-levels-password', clientId: 'kept-2' } },
      three: { ctx: { request: { headers: { Authorization: 'Basic three-levels-basic', cookie: '_session=three-levels-cookie', 'x-kept': 'kept-3' } } } },
      five: nest(5, { client_secret: 'five-levels-secret', refresh_token: 'five-levels-refresh', grant: 'kept-5' }),
      list: [{ access_token: 'in-array-access' }, [{ id_token: 'in-nested-array-id' }], 'plain-kept'],
      mixed: { items: [{ deeper: [{ code: 'array-in-object-code', user_code: 'array-user-code' }] }] },
    };
    const error = Object.assign(new Error('refused'), { details: { body: { device_code: 'error-details-device-code' } } });
    const caused = new Error('outer', { cause: Object.assign(new Error('inner'), { request: { token: 'error-cause-token' } }) });
    const secrets = [
      'two-levels-password',
      'three-levels-basic',
      'three-levels-cookie',
      'five-levels-secret',
      'five-levels-refresh',
      'in-array-access',
      'in-nested-array-id',
      'array-in-object-code',
      'array-user-code',
      'error-details-device-code',
      'error-cause-token',
      'child-binding-secret',
    ];
    const text = capture((log) => {
      log.info(deep, 'nested');
      log.error({ err: error, wrapped: { err: error } }, 'an error with details');
      log.warn(error);
      log.info({ wrapper: { error: caused } }, 'a cause');
      log.child({ component: 'child', conn: { ldap: { bindCredentials: { secret: 'child-binding-secret' } } } }).info('from a child');
    });
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 5);
    for (const secret of secrets) assert.ok(!text.includes(secret), `${secret} was logged`);
    // what is not a credential stays, and so does the shape around it
    for (const kept of ['kept-2', 'kept-3', 'kept-5', 'plain-kept', 'refused', 'an error with details']) assert.ok(text.includes(kept), `${kept} kept`);
    const first = lines[0] as { five: Record<string, Record<string, Record<string, Record<string, Record<string, Record<string, unknown>>>>>> };
    assert.deepEqual(first.five.level5!.level4!.level3!.level2!.level1, { client_secret: '[redacted]', refresh_token: '[redacted]', grant: 'kept-5' });
    assert.match(JSON.stringify(lines[1]), /"stack":"Error: refused/, 'an error keeps its stack');
    // the logged objects themselves are untouched
    assert.equal(deep.two.request.password, 'two-levels-password');
    assert.equal((error as unknown as { details: { body: { device_code: string } } }).details.body.device_code, 'error-details-device-code');
  });

  it('logs a cyclic object without looping', () => {
    const cyclic: Record<string, unknown> = { name: 'loop', inner: { password: 'cyclic-password' } };
    (cyclic.inner as Record<string, unknown>).parent = cyclic;
    const text = capture((log) => log.info({ cyclic }, 'cycle'));
    assert.ok(!text.includes('cyclic-password'));
    assert.ok(text.includes('"name":"loop"'));
  });
});
