/**
 * Which approval a tool call needs (`toolApprovals.policies`): the first policy whose every
 * given field matches the call — its MCP server, the tool, a scope that unlocks the tool
 * (`resources[].scopes[].tools`), a role of the person, the client — decides; without one,
 * the person approves every call, with a fresh second factor if they have one.
 */
import type { Config, ResourceConfig } from '../config/schema.js';

export type Ask = 'always' | 'once_per_session' | 'never';
export type SecondFactorRule = 'if_enrolled' | 'always' | 'off';

export interface ApprovalPolicy {
  ask: Ask;
  secondFactor: SecondFactorRule;
}

export interface ToolCall {
  resource: string;
  tool: string;
  clientId: string;
  /** the person's roles; empty for a token without a person */
  roles: readonly string[];
}

export const DEFAULT_POLICY: ApprovalPolicy = { ask: 'always', secondFactor: 'if_enrolled' };

/** The scopes of `resource` that list `tool` among the tools they unlock. */
export function scopesUnlocking(resource: ResourceConfig | undefined, tool: string): string[] {
  if (!resource) return [];
  return Object.entries(resource.scopes)
    .filter(([, scope]) => scope.tools.includes(tool))
    .map(([name]) => name);
}

export function approvalPolicy(config: Pick<Config, 'toolApprovals' | 'resources'>, call: ToolCall): ApprovalPolicy {
  const resource = config.resources.find((r) => r.uri === call.resource);
  const scopes = scopesUnlocking(resource, call.tool);
  const match = config.toolApprovals.policies.find(
    (p) =>
      (p.resource === undefined || p.resource === call.resource) &&
      (p.tool === undefined || p.tool === '*' || p.tool === call.tool) &&
      (p.scope === undefined || scopes.includes(p.scope)) &&
      (p.role === undefined || call.roles.includes(p.role)) &&
      (p.client === undefined || p.client === call.clientId),
  );
  return match ? { ask: match.ask, secondFactor: match.secondFactor } : DEFAULT_POLICY;
}
