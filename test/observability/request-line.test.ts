/**
 * The one line per request (src/observability/logger.ts `requestLineWriter`), built as one string
 * instead of through pino: byte for byte what pino writes for the same fields (but the time), for
 * paths that need escaping too, on the logger's own destination, a turn's lines in one write at
 * its end; nothing below the log's level.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, requestLineWriter } from '../../src/observability/logger.js';

function capture(): { stream: Writable; lines: string[]; chunks: number } {
  const out = { stream: undefined as unknown as Writable, lines: [] as string[], chunks: 0 };
  out.stream = new Writable({
    write(chunk, _enc, done) {
      out.chunks++;
      out.lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return out;
}

const withoutTime = (line: string) => line.replace(/"time":"[^"]*"/, '"time":"T"');

describe('request log line', () => {
  it('is what pino writes for the same fields; a turn\'s lines go out together at its end', async () => {
    const ours = capture();
    const pinos = capture();
    const log = createLogger('info', ours.stream);
    const reference = createLogger('info', pinos.stream);
    const write = requestLineWriter(log);
    const cases: [string, string, string, number, number][] = [
      ['c0ffee00-1234-4567-89ab-0123456789ab', 'POST', '/token', 200, 1.2],
      ['req.id_with-dots', 'GET', '/static/a "quoted" \\ path\n\u2028é\u0001', 404, 0],
      ['x'.repeat(128), 'PROPFIND', '/device/ABCD-EFGH', 500, 12345.6],
    ];
    for (const [requestId, method, path, status, ms] of cases) {
      write(requestId, method, path, status, ms);
      reference.info({ requestId, method, path, status, ms }, 'request');
    }
    assert.equal(ours.lines.length, 0, 'nothing before the end of the turn');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(ours.chunks, 1, 'one write for the turn');
    assert.equal(ours.lines.length, cases.length);
    for (let i = 0; i < cases.length; i++) {
      assert.equal(withoutTime(ours.lines[i]!), withoutTime(pinos.lines[i]!));
      const parsed = JSON.parse(ours.lines[i]!) as Record<string, unknown>;
      const [requestId, method, path, status, ms] = cases[i]!;
      assert.deepEqual({ ...parsed, time: undefined }, { level: 30, time: undefined, service: 'mcp-authz', requestId, method, path, status, ms, msg: 'request' });
      assert.ok(!Number.isNaN(Date.parse(String(parsed.time))), 'an ISO time');
    }
  });

  it('writes nothing when info is below the level', async () => {
    const { stream, lines } = capture();
    requestLineWriter(createLogger('warn', stream))('id-00000001', 'GET', '/', 200, 1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(lines, []);
  });
});
