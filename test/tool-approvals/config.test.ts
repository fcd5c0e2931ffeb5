/**
 * `toolApprovals` in the configuration: an empty config gets the defaults; a policy's
 * resource and scope must name configured ones, and the errors say which.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { fixtureConfig, NOTES } from '../helpers/fixtures.js';

const withPolicies = (policies: unknown[]) => ({ ...fixtureConfig(), toolApprovals: { policies } }) as unknown as ConfigInput;

test('defaults: ask always, 300 s requests, 60 s tokens, poll every 5 s', () => {
  const config = parseConfig({});
  assert.deepEqual(config.toolApprovals, { requestTtl: 300, tokenTtl: 60, pollInterval: 5, policies: [] });
});

test('a policy takes secondFactor if_enrolled by default and keeps the resource canonical', () => {
  const config = parseConfig(withPolicies([{ resource: 'HTTPS://notes.example.com/mcp', tool: 'delete_note', ask: 'never' }]));
  assert.deepEqual(config.toolApprovals.policies, [{ resource: NOTES, tool: 'delete_note', ask: 'never', secondFactor: 'if_enrolled' }]);
});

test('a policy naming an unknown resource or a scope of another resource is refused with the field named', () => {
  assert.throws(
    () => parseConfig(withPolicies([{ resource: 'https://elsewhere.example.com/mcp', ask: 'never' }])),
    /toolApprovals\.policies\[0\]\.resource: https:\/\/elsewhere\.example\.com\/mcp is not a configured resource/,
  );
  assert.throws(
    () => parseConfig(withPolicies([{ resource: NOTES, scope: 'calendar:read', ask: 'never' }])),
    /toolApprovals\.policies\[0\]\.scope: "calendar:read" is not a scope of https:\/\/notes\.example\.com\/mcp/,
  );
  assert.throws(() => parseConfig(withPolicies([{ scope: 'nope:read', ask: 'never' }])), /toolApprovals\.policies\[0\]\.scope: "nope:read" is not a scope of any resource/);
  assert.throws(() => parseConfig(withPolicies([{ ask: 'sometimes' }])), /toolApprovals\.policies\[0\]\.ask/);
  assert.throws(() => parseConfig(withPolicies([{ ask: 'never', extra: 1 }])), /toolApprovals\.policies\[0\]\.extra: unknown key/);
  assert.throws(() => parseConfig({ toolApprovals: { tokenTtl: 5 } }), /toolApprovals\.tokenTtl/);
});
