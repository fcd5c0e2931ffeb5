/**
 * The file sink's retention (`audit.retention`): rotated files beyond `maxBytes`, or older than
 * `maxAge`, are deleted after a rotation, oldest first, the current file never; what each held of
 * each chain is recorded in the store first, so `audit verify` passes with a note — and still
 * reports a file deleted by anything else, and a record forged where retention cut a chain.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../../adapters/contract.js';
import { openStore } from '../../adapters/index.js';
import { createAuditLog } from '../../src/audit/log.js';
import { readPruned } from '../../src/audit/checkpoints.js';
import { sinkFileSource, sinkFiles, verifySource } from '../../src/audit/read.js';
import { filesToPrune } from '../../src/audit/retention.js';
import { CURRENT_FILE } from '../../src/audit/sinks.js';
import { auditConfig, capturedLogger, forge, sampleEvent } from './support.js';

const root = mkdtempSync(join(tmpdir(), 'mcp-authz-audit-retention-'));
after(() => rmSync(root, { recursive: true, force: true }));

const MiB = 1024 * 1024;
const bytesOf = (paths: string[]) => paths.reduce((n, p) => n + statSync(p).size, 0);

describe('audit retention by size', () => {
  const dataDir = join(root, 'size');
  let store: Store;
  let firstChain: string;

  before(async () => {
    store = await openStore({ dataDir, redisKeyPrefix: 'x:' });
    const config = auditConfig(dataDir, { maxFileBytes: 128 * 1024, retention: { maxBytes: MiB } });
    const logger = capturedLogger();
    // a first writer, closed: its whole chain ends up in the oldest files
    const first = createAuditLog({ config, store, log: logger.log });
    firstChain = first.chain;
    for (let i = 0; i < 300; i++) first.record(sampleEvent(i));
    await first.close();
    // then a long-running one: about 2 MiB of records over many rotations
    const second = createAuditLog({ config, store, log: logger.log });
    for (let i = 0; i < 5000; i++) {
      second.record(sampleEvent(i));
      if (i % 200 === 0) await second.flush();
    }
    await second.close();
    assert.ok(logger.lines.some((l) => l.event === 'audit.pruned'), 'retention logged what it deleted');
    assert.equal(logger.lines.filter((l) => Number(l.level) >= 50).length, 0, logger.text());
  });
  after(() => store.close());

  it('keeps the rotated files within maxBytes, and verify passes with a note', async () => {
    const files = await sinkFiles(dataDir);
    const rotated = files.filter((f) => !f.endsWith(CURRENT_FILE));
    assert.ok(rotated.length >= 2, `${rotated.length} rotated files kept`);
    assert.ok(bytesOf(rotated) <= MiB, `${bytesOf(rotated)} bytes of rotated files`);
    const result = await verifySource(sinkFileSource(dataDir), store.settings);
    assert.deepEqual(result.problems, []);
    assert.ok(result.notes.some((n) => n.includes(firstChain) && /wholly removed by the retention/.test(n)), result.notes.join('\n'));
    assert.ok(result.notes.some((n) => /seq 1–\d+ removed by the retention/.test(n)), result.notes.join('\n'));
    assert.equal((await readPruned(store.settings, firstChain))?.seq, 300);
  });

  it('a rotated file deleted by anything else is still found', async () => {
    const [oldest] = (await sinkFiles(dataDir)).filter((f) => !f.endsWith(CURRENT_FILE));
    const content = readFileSync(oldest!);
    try {
      unlinkSync(oldest!);
      const result = await verifySource(sinkFileSource(dataDir), store.settings);
      assert.deepEqual([...new Set(result.problems.map((p) => p.kind))], ['deleted']);
      assert.match(result.problems[0]!.message, /missing after what the retention removed/);
    } finally {
      writeFileSync(oldest!, content);
    }
  });

  it('a record forged where the retention cut the chain is found', async () => {
    const [oldest] = (await sinkFiles(dataDir)).filter((f) => !f.endsWith(CURRENT_FILE));
    const content = readFileSync(oldest!, 'utf8');
    const lines = content.trimEnd().split('\n');
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    try {
      // the chain's first surviving record, re-made to follow something else
      writeFileSync(oldest!, [forge({ ...first, prev: 'f'.repeat(64) }), ...lines.slice(1)].join('\n') + '\n');
      const result = await verifySource(sinkFileSource(dataDir), store.settings);
      assert.ok(result.problems.some((p) => p.kind === 'broken-link' && /does not follow the record the retention removed/.test(p.message)), JSON.stringify(result.problems));
    } finally {
      writeFileSync(oldest!, content);
    }
  });
});

describe('audit retention by age', () => {
  it('selects rotated files older than maxAge, oldest first, never the current one', async () => {
    const dir = join(root, 'age', 'audit');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    const now = Date.parse('2026-12-03T12:00:00Z');
    const names = ['audit-2026-11-01T120000Z-a.jsonl', 'audit-2026-11-20T120000Z-a.jsonl', 'audit-2026-12-03T110000Z-a.jsonl', CURRENT_FILE];
    for (const name of names) writeFileSync(join(dir, name), 'x\n');
    utimesSync(join(dir, CURRENT_FILE), new Date(0), new Date(0));
    const doomed = await filesToPrune(dir, { maxAge: 14 * 86400 }, now);
    assert.deepEqual(doomed.map((f) => f.path.split('/').pop()), ['audit-2026-11-01T120000Z-a.jsonl']);
    assert.deepEqual((await filesToPrune(dir, { maxAge: 3600 }, now)).length, 2);
    assert.deepEqual(readdirSync(dir).length, 4, 'selecting deletes nothing');
  });
});
