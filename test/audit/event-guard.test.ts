/**
 * The audit event fast path (plainAuditEvent in src/audit/events.ts) against the schema it
 * stands in for: on every input of a hand-written corpus (each boundary of the schema, on both
 * sides) and of a seeded random search, it accepts only what the schema accepts, returns what
 * the schema's parse returns, and accepts the events the server records (so the fast path is
 * really taken). checkAuditEvent gives the same verdicts whichever path decides.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIT_EVENTS, auditEventSchema, plainAuditEvent } from '../../src/audit/events.js';
import { checkAuditEvent } from '../../src/audit/log.js';

const base = { event: 'token.issued', outcome: 'success' };
const s = (n: number, c = 'a') => c.repeat(n);

/** Events as the server records them: each must take the fast path. */
const typical: Record<string, unknown>[] = [
  { ...base, actor: 'bench-service', client: 'bench-service', resource: 'https://notes.example.com/mcp', requestId: 'c0ffee00-1234', source: '127.0.0.1', details: { grantType: 'client_credentials', jti: 'abc', scopes: ['notes:read'], ttl: 3600, dangerous: false } },
  { event: 'login.failed', outcome: 'failure', details: { reason: 'bad_password', username: 'alice' } },
  { event: 'key.rotated', outcome: 'success', actor: 'cli:root' },
  Object.assign(Object.create(null) as object, base, { details: Object.assign(Object.create(null) as object, { n: 1 }) }),
  ...AUDIT_EVENTS.map((event) => ({ event, outcome: 'failure' })),
];

/** Each boundary of the schema, on both sides, and shapes a parse might read differently. */
function corpus(): unknown[] {
  const withProto = Object.create({ actor: 'inherited' }) as Record<string, unknown>;
  Object.assign(withProto, base);
  class Event {
    event = 'token.issued';
    outcome = 'success';
  }
  const getter = { ...base };
  Object.defineProperty(getter, 'actor', { enumerable: true, get: () => 'from-a-getter' });
  const hidden = { ...base, details: {} as Record<string, unknown> };
  Object.defineProperty(hidden.details, 'secretish', { enumerable: false, value: 'x' });
  const symbolDetails = { ...base, details: { [Symbol('k')]: 'v', ok: 1 } };
  const sparse: unknown[] = ['a'];
  sparse[2] = 'c';
  return [
    ...typical,
    null,
    undefined,
    'token.issued',
    42,
    [base],
    {},
    { event: 'token.issued' },
    { outcome: 'success' },
    { ...base, event: 'no.such.event' },
    { ...base, event: 'TOKEN.ISSUED' },
    { ...base, outcome: 'maybe' },
    { ...base, outcome: undefined },
    { ...base, extra: 1 },
    { ...base, password: 'hunter2' },
    { ...base, actor: '' },
    { ...base, actor: s(1) },
    { ...base, actor: s(512) },
    { ...base, actor: s(513) },
    { ...base, client: s(512, 'é') },
    { ...base, resource: s(256, '😀') },
    { ...base, resource: s(257, '😀') },
    { ...base, requestId: 7 },
    { ...base, source: null },
    { ...base, source: undefined },
    { ...base, actor: ['a'] },
    { ...base, actor: new String('a') },
    { ...base, details: undefined },
    { ...base, details: null },
    { ...base, details: [] },
    { ...base, details: 'x' },
    { ...base, details: {} },
    { ...base, details: { a: s(512) } },
    { ...base, details: { a: s(513) } },
    { ...base, details: { a: '' } },
    { ...base, details: { a: 0, b: -1.5, c: Number.MAX_VALUE } },
    { ...base, details: { a: Number.NaN } },
    { ...base, details: { a: Number.POSITIVE_INFINITY } },
    { ...base, details: { a: true, b: false } },
    { ...base, details: { a: null } },
    { ...base, details: { a: undefined } },
    { ...base, details: { a: {} } },
    { ...base, details: { a: 10n } },
    { ...base, details: { a: [] } },
    { ...base, details: { a: Array.from({ length: 200 }, () => 'x') } },
    { ...base, details: { a: Array.from({ length: 201 }, () => 'x') } },
    { ...base, details: { a: [s(256)] } },
    { ...base, details: { a: [s(257)] } },
    { ...base, details: { a: ['x', 1] } },
    { ...base, details: { a: sparse } },
    { ...base, details: { [s(64)]: 1 } },
    { ...base, details: { [s(65)]: 1 } },
    { ...base, details: { a_1: 1, Z9: 2 } },
    { ...base, details: { _a: 1 } },
    { ...base, details: { '1a': 1 } },
    { ...base, details: { 'a-b': 1 } },
    { ...base, details: { 'a\n': 1 } },
    { ...base, details: { '': 1 } },
    { ...base, details: JSON.parse('{"__proto__": "x", "a": 1}') as unknown },
    JSON.parse('{"event": "token.issued", "outcome": "success", "__proto__": {"actor": "x"}}') as unknown,
    withProto,
    new Event(),
    getter,
    hidden,
    symbolDetails,
    { ...base, details: new Map([['a', 1]]) },
    { ...base, details: Object.create({ inherited: 1 }) as object },
  ];
}

/** A seeded generator (mulberry32): the same search on every run, printed seed on failure. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  return { next, pick };
}

function randomEvent(r: ReturnType<typeof random>): unknown {
  const strings = ['', 'a', s(511), s(512), s(513), s(257), s(256), 'é', '😀'.repeat(256), '😀'.repeat(257), 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln'];
  const values: unknown[] = [...strings, 0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, true, false, null, undefined, {}, [], ['a'], [s(257)], Array.from({ length: 201 }, () => 'x'), [1]];
  const keys = ['a', 'grantId', 'jti', 'scopes', 'A_1', '_x', '1a', '', s(64), s(65), 'accessToken', 'password'];
  const event: Record<string, unknown> = {};
  if (r.next() < 0.95) event.event = r.next() < 0.9 ? r.pick(AUDIT_EVENTS) : r.pick(['x', '', 'token.Issued']);
  if (r.next() < 0.95) event.outcome = r.next() < 0.9 ? r.pick(['success', 'failure']) : r.pick(['', 'ok', 1]);
  for (const field of ['actor', 'client', 'resource', 'requestId', 'source']) if (r.next() < 0.4) event[field] = r.next() < 0.8 ? r.pick(strings) : r.pick(values);
  if (r.next() < 0.6) {
    const details: Record<string, unknown> = {};
    const n = Math.floor(r.next() * 5);
    for (let i = 0; i < n; i++) details[r.pick(keys)] = r.pick(values);
    event.details = r.next() < 0.9 ? details : r.pick(values);
  }
  if (r.next() < 0.05) event[r.pick(['extra', 'time', 'hash'])] = 'x';
  return event;
}

function assertAgrees(input: unknown, label: string): 'fast' | 'schema' {
  const fast = plainAuditEvent(input);
  const parsed = auditEventSchema.safeParse(input);
  if (fast !== undefined) {
    assert.ok(parsed.success, `the fast path accepted what the schema refuses: ${label}`);
    assert.deepStrictEqual(fast, parsed.data, `the fast path's event differs from the schema's: ${label}`);
    assert.notStrictEqual(fast, input, 'the fast path returns a copy, as the schema does');
    const inputDetails = (input as { details?: Record<string, unknown> }).details;
    for (const [key, value] of Object.entries(fast.details ?? {})) {
      if (Array.isArray(value)) assert.notStrictEqual(value, inputDetails![key], `a list is copied (a caller may change its own later): ${label}`);
    }
    return 'fast';
  }
  return 'schema';
}

describe('audit event fast path', { timeout: 60_000 }, () => {
  it('takes the fast path for the events the server records, with the schema’s result', () => {
    for (const [i, event] of typical.entries()) assert.equal(assertAgrees(event, `typical #${i}`), 'fast', `typical #${i} fell back to the schema`);
  });

  it('never accepts what the schema refuses, at each boundary of the schema', () => {
    const paths = { fast: 0, schema: 0 };
    for (const [i, input] of corpus().entries()) paths[assertAgrees(input, `corpus #${i}`)]++;
    // both sides of the boundaries were reached
    assert.ok(paths.fast >= 20 && paths.schema >= 30, JSON.stringify(paths));
  });

  it('agrees with the schema on a seeded random search', () => {
    const seed = 20261204;
    const r = random(seed);
    const paths = { fast: 0, schema: 0, refused: 0 };
    for (let i = 0; i < 20_000; i++) {
      const input = randomEvent(r);
      const path = assertAgrees(input, `seed ${seed}, case ${i}: ${JSON.stringify(input)?.slice(0, 300)}`);
      paths[path]++;
      if (!auditEventSchema.safeParse(input).success) paths.refused++;
    }
    assert.ok(paths.fast > 2_000 && paths.refused > 2_000, JSON.stringify(paths));
  });

  it('checkAuditEvent refuses credentials and tokens whichever path parsed the event', () => {
    const cases: [unknown, string][] = [
      [{ ...base, details: { accessToken: 'x' } }, 'details.accessToken'],
      [{ ...base, password: 'hunter2' }, 'password'],
      [{ ...base, details: { code_challenge: 'abc' } }, 'details.code_challenge'],
      [{ ...base, actor: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl' }, 'actor'],
      [{ ...base, details: { scopes: ['eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln'] } }, 'details.scopes'],
      [{ ...base, event: 'no.such.event' }, 'event'],
      [{ ...base, details: { a: s(513) } }, 'details.a'],
    ];
    for (const [input, field] of cases) {
      const checked = checkAuditEvent(input);
      assert.equal(checked.ok, false, JSON.stringify(input));
      assert.equal((checked as { field: string }).field, field);
    }
    const accepted = checkAuditEvent(typical[0]);
    assert.ok(accepted.ok);
    assert.deepStrictEqual(accepted.event, auditEventSchema.parse(typical[0]));
  });
});
