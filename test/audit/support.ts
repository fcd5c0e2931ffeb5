/**
 * What the audit tests share: a configuration, a logger whose lines the test can read, sample
 * events and forged records.
 */
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { canonicalJson, recordHash, serializeRecord, sha256Hex } from '../../src/audit/record.js';
import { fixtureConfig } from '../helpers/fixtures.js';

export function auditConfig(dataDir: string, audit: Partial<NonNullable<ConfigInput['audit']>> = {}, extra: Partial<ConfigInput> = {}): Config {
  return parseConfig({ ...fixtureConfig(), dataDir, logLevel: 'debug', audit: { sink: 'file', ...audit }, ...extra });
}

export interface CapturedLogger {
  log: Logger;
  /** every log line so far, parsed */
  lines: Record<string, unknown>[];
  /** every log line so far, as written */
  text(): string;
}

export function capturedLogger(): CapturedLogger {
  const raw: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) {
        if (!line.trim()) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { log: createLogger('debug', sink), lines, text: () => raw.join('\n') };
}

/** A few events of the kinds the server will record. */
export function sampleEvent(i: number): AuditEvent {
  const kinds: AuditEvent[] = [
    { event: 'login.succeeded', outcome: 'success', actor: 'acct-alice', client: 'web-app', requestId: `req-${i}`, source: '127.0.0.1' },
    { event: 'token.issued', outcome: 'success', actor: 'acct-alice', client: 'web-app', resource: 'https://notes.example.com/mcp', details: { grantId: `g-${i}`, scopes: ['notes:read'] } },
    { event: 'login.failed', outcome: 'failure', client: 'web-app', source: '10.0.0.7', details: { reason: 'bad_credentials', username: 'mallory' } },
    { event: 'token.revoked', outcome: 'success', actor: 'nightly-report', client: 'nightly-report', details: { jti: `jti-${i}` } },
  ];
  return kinds[i % kinds.length]!;
}

/** Re-hashes a record after editing it, as a forger who knows the format would. */
/** A record with its hash recomputed, written as the writer writes (what a careful forger does). */
export function forge(record: Record<string, unknown>): string {
  const { hash: _hash, ...rest } = record;
  return serializeRecord({ ...rest, hash: recordHash(rest) });
}

export { canonicalJson, sha256Hex };
