/**
 * The audit log on the file sink, on a real data directory and a real SQLite store: records
 * are hash-chained and checkpointed; every kind of tampering with the file — an edited,
 * deleted, inserted or reordered record, deleted newest records, a rewritten chain, a forged
 * chain — is reported by verify with its kind and where; rotation keeps the chains whole;
 * events carrying anything credential-like are refused and never written.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Store } from '../../adapters/contract.js';
import { openStore } from '../../adapters/index.js';
import { createAuditLog, type ChainedAuditLog } from '../../src/audit/log.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { CHAIN_INDEX, readCheckpoint } from '../../src/audit/checkpoints.js';
import { fileSource, sinkFileSource, sinkFiles, verifySource } from '../../src/audit/read.js';
import { canonicalJson, genesisHash, recordHash, sealAuditRecord, sealRecord, serializeRecord, sha256Hex as sha256, type UnsealedRecord } from '../../src/audit/record.js';
import { ROTATED_FILE } from '../../src/audit/sinks.js';
import { createLogger } from '../../src/observability/logger.js';
import { auditConfig, capturedLogger, forge, sampleEvent } from './support.js';

const root = mkdtempSync(join(tmpdir(), 'mcp-authz-audit-chain-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function openSqlite(dataDir: string): Promise<Store> {
  return openStore({ dataDir, redisKeyPrefix: 'x:' });
}

describe('one chain in the file sink', () => {
  const dataDir = join(root, 'one');
  const file = join(dataDir, 'audit', 'audit.jsonl');
  let store: Store;
  let audit: ChainedAuditLog;
  let original: string[];

  before(async () => {
    store = await openSqlite(dataDir);
    const logger = capturedLogger();
    audit = createAuditLog({ config: auditConfig(dataDir, { checkpointEvery: 4 }), store, log: logger.log });
    for (let i = 0; i < 10; i++) audit.record(sampleEvent(i));
    await audit.close();
    original = readFileSync(file, 'utf8').trimEnd().split('\n');
  });
  after(() => store.close());

  /** verify over a tampered copy of the file, with the real checkpoints */
  async function verifyCopy(name: string, lines: string[]) {
    const copy = join(root, `${name}.jsonl`);
    writeFileSync(copy, lines.length ? `${lines.join('\n')}\n` : '');
    const result = await verifySource(fileSource([copy], { mixed: false }), store.settings);
    return { copy, result, kinds: result.problems.map((p) => p.kind) };
  }

  it('writes one JSON object per line: the event, time, chain, seq, prev and hash, chained from the genesis', () => {
    assert.equal(original.length, 10);
    const records = original.map((line) => JSON.parse(line) as Record<string, unknown>);
    records.forEach((r, i) => {
      assert.equal(r.audit, 1);
      assert.equal(r.chain, audit.chain);
      assert.equal(r.seq, i + 1);
      assert.ok(!Number.isNaN(Date.parse(String(r.time))));
      assert.equal(r.prev, i === 0 ? genesisHash(audit.chain) : records[i - 1]!.hash);
      assert.equal(r.hash, recordHash(r));
      const { audit: _a, time: _t, chain: _c, seq: _s, prev: _p, hash: _h, ...event } = r;
      assert.deepEqual(event, sampleEvent(i));
    });
  });

  it('checkpoints the head in the store and lists the chain; closing marks the checkpoint closed', async () => {
    const checkpoint = await readCheckpoint(store.settings, audit.chain);
    assert.equal(checkpoint?.seq, 10);
    assert.equal(checkpoint?.hash, (JSON.parse(original[9]!) as { hash: string }).hash);
    assert.equal(checkpoint?.closed, true);
    assert.deepEqual(JSON.parse((await store.settings.get(CHAIN_INDEX))!.value), [audit.chain]);
  });

  it('verifies the untouched file', async () => {
    const result = await verifySource(sinkFileSource(dataDir), store.settings);
    assert.deepEqual(result.problems, []);
    assert.equal(result.records, 10);
    assert.equal(result.chains, 1);
  });

  it('an edited field: edited, at that line', async () => {
    const lines = [...original];
    lines[3] = lines[3]!.replace('"actor":"nightly-report"', '"actor":"someone-else"');
    assert.notEqual(lines[3], original[3]);
    const { copy, result, kinds } = await verifyCopy('edited', lines);
    assert.deepEqual(kinds, ['edited']);
    assert.equal(result.problems[0]!.location, `${copy}:4`);
    assert.equal(result.problems[0]!.seq, 4);
    assert.equal(result.problems[0]!.chain, audit.chain);
  });

  it('the writer seals a record as the verifier hashes and serialises it', () => {
    for (const line of original) {
      const { hash, ...body } = JSON.parse(line) as Record<string, unknown>;
      assert.deepEqual(sealRecord(body), { hash, line });
      assert.deepEqual(sealAuditRecord(body as UnsealedRecord), { hash, line });
      assert.equal(recordHash(body), hash);
    }
    // every member a record may have, the optional ones too, in an order of their own
    const full: UnsealedRecord = {
      time: '2026-12-05T07:05:47.930Z',
      details: { scopes: ['notes:read', 'notes:write'], grantType: 'client_credentials', n: 3, ok: false, 'z\u00e9': 'é "quoted" \\ \n' } as never,
      source: '127.0.0.1',
      seq: 7,
      resource: 'https://notes.example.com/mcp',
      requestId: 'r-1',
      prev: 'b'.repeat(64),
      outcome: 'failure',
      lost: 2,
      event: 'token.issued',
      client: 'c',
      chain: 'vm-1',
      audit: 1,
      actor: 'a\u2028b',
    };
    assert.deepEqual(sealAuditRecord(full), sealRecord(full as unknown as Record<string, unknown>));
    const odd = { audit: 1, prev: 'a'.repeat(64), zeta: [1, 'two', null], alpha: { 'b\u00e9': 'é', a: -0, n: undefined }, hashx: 'after hash' };
    assert.deepEqual(sealRecord(odd), { hash: recordHash(odd), line: serializeRecord({ ...odd, hash: recordHash(odd) }) });
  });

  it('canonical JSON sorts every object’s keys, whatever order and shape the objects came in', () => {
    // the reference: the same JSON, written by sorting each object's keys afresh
    const reference = (value: unknown): string => {
      if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
      if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : reference(v))).join(',')}]`;
      const object = value as Record<string, unknown>;
      const keys = Object.keys(object)
        .sort()
        .filter((key) => object[key] !== undefined);
      return `{${keys.map((key) => `${JSON.stringify(key)}:${reference(object[key])}`).join(',')}}`;
    };
    const values: unknown[] = [
      { b: 1, a: 2 },
      { a: 2, b: 1 },
      { b: 1, a: undefined, c: [{ z: 1, y: { x: 'é' } }] },
      // keys with NUL in them: two different key lists that join to the same string
      { 'a\0b': 1, c: 2 },
      { a: 1, 'b\0c': 2 },
      { 'a\0b': 3, c: 4 },
      { 10: 'n', 9: 'm', '': 'empty', hash: 'h', hasi: 'i', has: 'g' },
      { ...{ event: 'token.issued', outcome: 'success' }, ...{ requestId: 'r' }, details: { scopes: ['b', 'a'], grantType: 'x' } },
    ];
    for (const value of values) {
      assert.equal(canonicalJson(value), reference(value));
      // a second time: through whatever the first one kept
      assert.equal(canonicalJson(value), reference(value));
      const body = { prev: 'b'.repeat(64), ...(value as object) };
      assert.deepEqual(sealRecord(body), { hash: recordHash(body), line: serializeRecord({ ...body, hash: recordHash(body) }) });
      const hash = sha256(`${'b'.repeat(64)}\n${reference({ ...body, hash: undefined })}`);
      assert.equal(sealRecord(body).line, reference({ ...body, hash }));
    }
  });

  it('each line is the record’s one serialisation: canonical JSON, nothing more', () => {
    for (const line of original) assert.equal(line, serializeRecord(JSON.parse(line) as Record<string, unknown>));
  });

  it('the same value in other bytes — a duplicate key, whitespace, escapes, CR: non-canonical at that line; a BOM or bytes not UTF-8: unreadable there', async () => {
    const line = original[3]!;
    const record = JSON.parse(line) as Record<string, unknown>;
    const variants: [string, string][] = [
      // the review's attack: readers that keep the first duplicate see another client and event
      ['duplicate key', `{"event":"login.succeeded","client":"other",${line.slice(1)}`],
      ['whitespace', line.replace('","', '", "')],
      ['a \\u escape', line.replace('"chain":"', '"\\u0063hain":"')],
      ['reordered keys', JSON.stringify({ hash: record.hash, ...record })],
      ['a carriage return', `${line}\r`],
    ];
    for (const [label, variant] of variants) {
      assert.notEqual(variant, line, label);
      assert.deepEqual(JSON.parse(String(variant)), record, `${label}: parses to the same record`);
      const { copy, result, kinds } = await verifyCopy(`non-canonical-${label.replace(/\W+/g, '-')}`, [...original.slice(0, 3), String(variant), ...original.slice(4)]);
      assert.deepEqual(kinds, ['non-canonical'], label);
      assert.equal(result.problems[0]!.location, `${copy}:4`, label);
      assert.equal(result.problems[0]!.seq, 4, label);
    }
    // a byte order mark, and bytes that are not UTF-8 where a string was: unreadable, and the record missing
    const bom = await verifyCopy('bom', [...original.slice(0, 3), `\ufeff${line}`, ...original.slice(4)]);
    assert.deepEqual(
      bom.result.problems.map((p) => [p.kind, p.location]),
      [
        ['unreadable', `${bom.copy}:4`],
        ['deleted', `${bom.copy}:5`],
      ],
    );
    const copy = join(root, 'not-utf8.jsonl');
    const bad = Buffer.from(line.replace('"actor":"nightly-report"', '"actor":"nightly-repor\u0000"'), 'utf8');
    bad[bad.indexOf(0)] = 0xff;
    writeFileSync(copy, Buffer.concat([Buffer.from(`${original.slice(0, 3).join('\n')}\n`), bad, Buffer.from(`\n${original.slice(4).join('\n')}\n`)]));
    const result = await verifySource(fileSource([copy], { mixed: false }), store.settings);
    assert.deepEqual(
      result.problems.map((p) => [p.kind, p.location]),
      [
        ['unreadable', `${copy}:4`],
        ['deleted', `${copy}:5`],
      ],
    );
  });

  it('a deleted line in the middle: deleted, between its neighbours', async () => {
    const lines = original.filter((_, i) => i !== 4);
    const { copy, result, kinds } = await verifyCopy('deleted', lines);
    assert.deepEqual(kinds, ['deleted']);
    assert.equal(result.problems[0]!.seq, 5);
    assert.equal(result.problems[0]!.location, `${copy}:5`);
    assert.match(result.problems[0]!.message, new RegExp(`seq 5 missing between ${copy}:4 and ${copy}:5`));
  });

  it('a forged line with a hash of its own inserted: inserted, at the forged line', async () => {
    const forged = forge({ ...(JSON.parse(original[2]!) as Record<string, unknown>), actor: 'acct-mallory' });
    const lines = [...original.slice(0, 3), forged, ...original.slice(3)];
    const { copy, result, kinds } = await verifyCopy('inserted', lines);
    assert.deepEqual(kinds, ['inserted']);
    assert.equal(result.problems[0]!.location, `${copy}:4`);
    assert.equal(result.problems[0]!.seq, 3);
    // the same forgery placed before the genuine record is still the one found
    const before = await verifyCopy('inserted-before', [...original.slice(0, 2), forged, ...original.slice(2)]);
    assert.deepEqual(before.kinds, ['inserted']);
    assert.equal(before.result.problems[0]!.location, `${before.copy}:3`);
  });

  it('two lines swapped: reordered, at the one out of place', async () => {
    const lines = [...original];
    [lines[5], lines[6]] = [lines[6]!, lines[5]!];
    const { copy, result, kinds } = await verifyCopy('reordered', lines);
    assert.deepEqual(kinds, ['reordered']);
    assert.equal(result.problems[0]!.location, `${copy}:7`);
    assert.equal(result.problems[0]!.seq, 6);
    assert.match(result.problems[0]!.message, new RegExp(`after seq 7 \\(at ${copy}:6\\)`));
  });

  it('the last lines deleted: the checkpoint catches it (truncated)', async () => {
    const { copy, result, kinds } = await verifyCopy('truncated', original.slice(0, 7));
    assert.deepEqual(kinds, ['truncated']);
    assert.equal(result.problems[0]!.location, `${copy}:7`);
    assert.match(result.problems[0]!.message, /checkpoint is at seq 10, the last record seen is seq 7/);
  });

  it('the first line deleted: deleted at the start', async () => {
    const { copy, result, kinds } = await verifyCopy('start', original.slice(1));
    assert.deepEqual(kinds, ['deleted']);
    assert.match(result.problems[0]!.message, new RegExp(`deleted at the start of chain ${audit.chain}: seq 1 missing before ${copy}:1`));
  });

  it('the chain rewritten from seq 2 on with every hash recomputed: only the checkpoint tells', async () => {
    const records = original.map((line) => JSON.parse(line) as Record<string, unknown>);
    records[1]!.actor = 'acct-mallory';
    for (let i = 1; i < records.length; i++) {
      records[i]!.prev = records[i - 1]!.hash;
      records[i] = JSON.parse(forge(records[i]!)) as Record<string, unknown>;
    }
    const { copy, result, kinds } = await verifyCopy('rewritten', records.map((r) => serializeRecord(r)));
    assert.deepEqual(kinds, ['checkpoint-mismatch']);
    assert.equal(result.problems[0]!.location, `${copy}:10`);
  });

  it('a valid-looking record appended to the closed chain: inserted', async () => {
    const last = JSON.parse(original[9]!) as Record<string, unknown>;
    const appended = forge({ ...last, seq: 11, prev: last.hash, event: 'admin.user_added' });
    const { copy, result, kinds } = await verifyCopy('appended', [...original, appended]);
    assert.deepEqual(kinds, ['inserted']);
    assert.equal(result.problems[0]!.location, `${copy}:11`);
  });

  it('a whole forged chain: unregistered; the whole chain deleted: chain-missing', async () => {
    const chain = 'forged-000000000000';
    let prev = genesisHash(chain);
    const forgedChain = [1, 2].map((seq) => {
      const line = forge({ audit: 1, time: new Date().toISOString(), ...sampleEvent(seq), chain, seq, prev });
      prev = (JSON.parse(line) as { hash: string }).hash;
      return line;
    });
    const forgedResult = await verifyCopy('forged-chain', [...original, ...forgedChain]);
    assert.deepEqual(forgedResult.kinds, ['unregistered']);
    assert.equal(forgedResult.result.problems[0]!.location, `${forgedResult.copy}:11`);

    const gone = await verifyCopy('gone', []);
    assert.deepEqual(gone.kinds, ['chain-missing']);
    assert.equal(gone.result.problems[0]!.location, `store:audit.checkpoint.${audit.chain}`);
  });

  it('an unreadable line: unreadable, and the record it was is missing from its chain', async () => {
    const lines = [...original];
    lines[2] = lines[2]!.slice(0, 40);
    const { copy, result, kinds } = await verifyCopy('unreadable', lines);
    assert.deepEqual(kinds, ['unreadable', 'deleted']);
    assert.equal(result.problems[0]!.location, `${copy}:3`);
  });
});

describe('rotation and several writers on one file', () => {
  const dataDir = join(root, 'rotation');
  let store: Store;

  before(async () => {
    store = await openSqlite(dataDir);
    const config = auditConfig(dataDir, { maxFileBytes: 64 * 1024, checkpointEvery: 50 });
    const logger = capturedLogger();
    // two writers with their own file handles, as two processes sharing the data directory
    const a = createAuditLog({ config, store, log: logger.log });
    const b = createAuditLog({ config, store, log: logger.log, role: 'cli' });
    for (let i = 0; i < 400; i++) {
      a.record(sampleEvent(i));
      if (i % 2 === 0) b.record(sampleEvent(i + 1));
      if (i % 25 === 0) await Promise.all([a.flush(), b.flush()]);
    }
    await Promise.all([a.close(), b.close()]);
    assert.equal(logger.lines.filter((l) => Number(l.level) >= 40).length, 0, logger.text());
  });
  after(() => store.close());

  it('rotates into several files, never deleting one, and verify passes across them', async () => {
    const files = await sinkFiles(dataDir);
    assert.ok(files.length >= 3, `files: ${files.join(', ')}`);
    const names = readdirSync(join(dataDir, 'audit'));
    assert.ok(names.includes('audit.jsonl'));
    assert.ok(names.filter((n) => n !== 'audit.jsonl').every((n) => ROTATED_FILE.test(n)), names.join(', '));
    const total = files.reduce((n, f) => n + readFileSync(f, 'utf8').trimEnd().split('\n').length, 0);
    assert.equal(total, 600);
    const result = await verifySource(sinkFileSource(dataDir), store.settings);
    assert.deepEqual(result.problems, []);
    assert.equal(result.records, 600);
    assert.equal(result.chains, 2);
  });

  it('a line deleted at the end of a rotated file is found, named in the next file', async () => {
    const files = await sinkFiles(dataDir);
    const first = files[0]!;
    const content = readFileSync(first, 'utf8');
    const lines = content.trimEnd().split('\n');
    try {
      writeFileSync(first, `${lines.slice(0, -1).join('\n')}\n`);
      const deleted = JSON.parse(lines.at(-1)!) as { chain: string; seq: number };
      // the record before it in its own chain (the other writer's records interleave)
      const before = lines.findLastIndex((l, i) => i < lines.length - 1 && (JSON.parse(l) as { chain: string }).chain === deleted.chain);
      const result = await verifySource(sinkFileSource(dataDir), store.settings);
      assert.deepEqual(result.problems.map((p) => p.kind), ['deleted']);
      assert.equal(result.problems[0]!.chain, deleted.chain);
      assert.equal(result.problems[0]!.seq, deleted.seq);
      assert.match(result.problems[0]!.message, new RegExp(`seq ${deleted.seq} missing between ${first}:${before + 1} and `));
      assert.ok(!result.problems[0]!.location.startsWith(first), result.problems[0]!.location);
    } finally {
      writeFileSync(first, content);
    }
  });

  it('tail reads back across files, newest last', async () => {
    const last = await sinkFileSource(dataDir).last(250);
    assert.equal(last.length, 250);
    const all: string[] = [];
    for (const f of await sinkFiles(dataDir)) all.push(...readFileSync(f, 'utf8').trimEnd().split('\n'));
    assert.deepEqual(last, all.slice(-250));
  });
});

describe('the secrets guard', () => {
  const dataDir = join(root, 'guard');
  let store: Store;
  before(async () => {
    store = await openSqlite(dataDir);
  });
  after(() => store.close());

  it('refuses a credential-like details key, an unknown field and a token-like value; never writes them; names the field', async () => {
    const logger = capturedLogger();
    const audit = createAuditLog({ config: auditConfig(dataDir), store, log: logger.log });
    audit.record({ event: 'token.issued', outcome: 'success', details: { accessToken: 'x-secret-value-1' } });
    audit.record({ event: 'login.failed', outcome: 'failure', password: 'hunter2-secret' } as unknown as AuditEvent);
    audit.record({ event: 'token.issued', outcome: 'success', details: { code_challenge: 'abc-secret-3' } });
    audit.record({ event: 'token.issued', outcome: 'success', actor: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl' });
    audit.record({ event: 'no.such.event', outcome: 'success' } as unknown as AuditEvent);
    audit.record({ event: 'login.succeeded', outcome: 'success', actor: 'acct-alice' });
    await audit.close();

    const refused = logger.lines.filter((l) => l.msg === 'audit event refused');
    assert.deepEqual(
      refused.map((l) => l.field),
      ['details.accessToken', 'password', 'details.code_challenge', 'actor', 'event'],
    );
    const written = readFileSync(join(dataDir, 'audit', 'audit.jsonl'), 'utf8').trimEnd().split('\n');
    assert.equal(written.length, 1);
    assert.equal((JSON.parse(written[0]!) as { event: string }).event, 'login.succeeded');
    assert.equal((JSON.parse(written[0]!) as { seq: number }).seq, 1);
    for (const secret of ['x-secret-value-1', 'hunter2-secret', 'abc-secret-3', 'eyJhbGciOiJFUzI1NiJ9']) {
      assert.ok(!written[0]!.includes(secret));
      assert.ok(!logger.text().includes(secret), `the log repeats ${secret}`);
    }
  });

  it('record() never throws, even for garbage', async () => {
    const logger = capturedLogger();
    const audit = createAuditLog({ config: auditConfig(join(root, 'garbage')), store, log: logger.log });
    assert.doesNotThrow(() => audit.record(null as unknown as AuditEvent));
    assert.doesNotThrow(() => audit.record('login.succeeded' as unknown as AuditEvent));
    await audit.close();
    assert.equal(logger.lines.filter((l) => l.msg === 'audit event refused').length, 2);
  });
});

describe('write failures', () => {
  it('are logged once per burst; the next record written says how many were lost; verify notes it', async () => {
    const dataDir = join(root, 'failing');
    mkdirSync(dataDir, { recursive: true });
    const store = await openSqlite(dataDir);
    try {
      // the audit directory cannot be created while a file stands in its place
      writeFileSync(join(dataDir, 'audit'), 'not a directory');
      const logger = capturedLogger();
      const audit = createAuditLog({ config: auditConfig(dataDir), store, log: logger.log });
      for (let i = 0; i < 3; i++) audit.record(sampleEvent(i));
      await audit.flush();
      assert.equal(logger.lines.filter((l) => String(l.msg).startsWith('audit write failed')).length, 1);

      rmSync(join(dataDir, 'audit'));
      audit.record(sampleEvent(3));
      audit.record(sampleEvent(4));
      await audit.close();
      const resumed = logger.lines.find((l) => l.event === 'audit.write_resumed');
      assert.equal(resumed?.lost, 3);
      const lines = readFileSync(join(dataDir, 'audit', 'audit.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(lines.map((l) => [l.seq, l.lost]), [[1, 3], [2, undefined]]);
      const result = await verifySource(sinkFileSource(dataDir), store.settings);
      assert.deepEqual(result.problems, []);
      assert.equal(result.notes.length, 1);
      assert.match(result.notes[0]!, /3 record\(s\) could not be written before seq 1/);
    } finally {
      await store.close();
    }
  });
});

describe('the stdout sink', () => {
  it('writes records between the log lines of a shared stdout; verify --file skips the log lines', async () => {
    const dataDir = join(root, 'stdout');
    const store = await openSqlite(dataDir);
    try {
      let collected = '';
      const out = new PassThrough();
      out.setEncoding('utf8').on('data', (d: string) => (collected += d));
      const log = createLogger('info', out);
      const audit = createAuditLog({ config: auditConfig(dataDir, { sink: 'stdout' }), store, log, out });
      for (let i = 0; i < 6; i++) {
        log.info({ n: i }, 'some request');
        audit.record(sampleEvent(i));
        await audit.flush();
      }
      await audit.close();
      log.flush();
      await new Promise((resolve) => setImmediate(resolve));
      const lines = collected.trimEnd().split('\n');
      assert.equal(lines.length, 12);
      assert.equal(lines.filter((l) => (JSON.parse(l) as { audit?: number }).audit === 1).length, 6);
      const file = join(root, 'stdout.log');
      writeFileSync(file, collected);
      const result = await verifySource(fileSource([file], { mixed: true }), store.settings);
      assert.deepEqual(result.problems, []);
      assert.equal(result.records, 6);
      assert.equal(result.skipped, 6);
      // and no audit directory was made
      assert.throws(() => readdirSync(join(dataDir, 'audit')), /ENOENT/);
    } finally {
      await store.close();
    }
  });
});
