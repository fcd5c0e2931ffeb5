/**
 * `isoNow` stamps log lines and audit records with the time formatted once per millisecond: it
 * must say what `Date#toISOString` says, for the same millisecond and for each new one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isoNow } from '../../src/observability/iso-now.js';

describe('isoNow', () => {
  it('is toISOString of the millisecond it is asked about, asked again or not', () => {
    const start = Date.UTC(2026, 11, 5, 7, 5, 47, 930);
    for (const t of [start, start, start + 1, start + 1, start + 999, start + 1000, start - 86_400_000, start]) {
      assert.equal(isoNow(t), new Date(t).toISOString());
    }
  });

  it('is now when asked without a time', () => {
    const before = Date.now();
    const stamp = Date.parse(isoNow());
    assert.ok(stamp >= before && stamp <= Date.now());
  });
});
