/** The audit log a test server wrote (every `*.jsonl` under `<dataDir>/audit`), parsed, and its raw text. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AuditRecord {
  event: string;
  outcome?: string;
  actor?: string;
  client?: string;
  resource?: string;
  details?: Record<string, unknown>;
}

export function readAuditLog(dataDir: string): { records: AuditRecord[]; text: string } {
  const dir = join(dataDir, 'audit');
  const text = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.jsonl'))
        .sort()
        .map((f) => readFileSync(join(dir, f), 'utf8'))
        .join('\n')
    : '';
  return { records: text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as AuditRecord), text };
}
