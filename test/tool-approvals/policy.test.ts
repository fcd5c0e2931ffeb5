/**
 * Which policy a tool call falls under: the first whose every given field matches (MCP
 * server, tool or `*`, a scope unlocking the tool, a role of the person, the client); none →
 * ask always, second factor if enrolled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { approvalPolicy, DEFAULT_POLICY, scopesUnlocking } from '../../src/tool-approvals/policy.js';
import { CALENDAR, fixtureConfig, NOTES } from '../helpers/fixtures.js';

const base = fixtureConfig();
const config = parseConfig({
  ...base,
  resources: [
    {
      ...base.resources![0]!,
      scopes: {
        'notes:read': { description: 'Read', tools: ['read_note'] },
        'notes:write': { description: 'Write', tools: ['create_note', 'rename_note'] },
        'notes:delete': { description: 'Delete', dangerous: true, tools: ['delete_note', 'rename_note'] },
      },
    },
    base.resources![1]!,
  ],
  toolApprovals: {
    policies: [
      { client: 'nightly-report', ask: 'never' },
      { role: 'admin', scope: 'notes:delete', ask: 'once_per_session', secondFactor: 'always' },
      { resource: NOTES, scope: 'notes:write', ask: 'once_per_session' },
      { resource: CALENDAR, tool: '*', ask: 'never', secondFactor: 'off' },
    ],
  },
});

const call = (tool: string, extra: { resource?: string; clientId?: string; roles?: string[] } = {}) => ({
  resource: extra.resource ?? NOTES,
  tool,
  clientId: extra.clientId ?? 'web-app',
  roles: extra.roles ?? [],
});

test('the scopes that unlock a tool', () => {
  const notes = config.resources[0];
  assert.deepEqual(scopesUnlocking(notes, 'rename_note'), ['notes:write', 'notes:delete']);
  assert.deepEqual(scopesUnlocking(notes, 'unknown_tool'), []);
  assert.deepEqual(scopesUnlocking(undefined, 'read_note'), []);
});

test('the first matching policy wins; every given field must match', () => {
  assert.deepEqual(approvalPolicy(config, call('delete_note', { clientId: 'nightly-report' })), { ask: 'never', secondFactor: 'if_enrolled' }, 'client');
  assert.deepEqual(approvalPolicy(config, call('delete_note', { roles: ['admin'] })), { ask: 'once_per_session', secondFactor: 'always' }, 'role and scope');
  assert.deepEqual(approvalPolicy(config, call('delete_note', { roles: ['user'] })), DEFAULT_POLICY, 'scope without the role');
  assert.deepEqual(approvalPolicy(config, call('rename_note', { roles: ['admin'] })), { ask: 'once_per_session', secondFactor: 'always' }, 'a tool two scopes unlock');
  assert.deepEqual(approvalPolicy(config, call('create_note')), { ask: 'once_per_session', secondFactor: 'if_enrolled' }, 'resource and scope');
  assert.deepEqual(approvalPolicy(config, call('anything', { resource: CALENDAR })), { ask: 'never', secondFactor: 'off' }, 'tool *');
  assert.deepEqual(approvalPolicy(config, call('read_note')), DEFAULT_POLICY, 'none matches');
});
