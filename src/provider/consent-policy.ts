/**
 * The engine's prompts, plus one consent check: a request for an MCP server that names no
 * scope of it (MCP clients often send none) asks the person about that server's
 * `defaultScopes` instead of failing with access_denied. The consent page then grants them
 * and records them as requested, so the code and tokens carry them.
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { ResourceRegistry } from './resources.js';

const { base, Check } = interactionPolicy;

export function consentPolicy(resources: ResourceRegistry): interactionPolicy.Prompt[] {
  const policy = base();
  const consent = policy.get('consent');
  if (!consent) throw new Error('oidc-provider has no consent prompt');
  consent.checks.add(
    new Check('rs_default_scopes', 'no scope was requested for the resource; its default scopes need consent', (ctx: KoaContextWithOIDC) => {
      const { oidc } = ctx;
      const requested = oidc.requestParamScopes;
      for (const [indicator, server] of Object.entries(oidc.resourceServers ?? {})) {
        const asked = [...requested].some((scope) => server.scopes.has(scope));
        // the engine answers ' ' for a grant that has seen nothing for this resource yet
        const encountered = oidc.grant?.getResourceScopeEncountered(indicator)?.trim();
        const defaults = resources.find(indicator)?.defaultScopes ?? [];
        if (!asked && !encountered && defaults.some((scope) => server.scopes.has(scope))) return Check.REQUEST_PROMPT;
      }
      return Check.NO_NEED_TO_PROMPT;
    }),
  );
  return policy;
}
