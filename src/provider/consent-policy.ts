/**
 * The engine's prompts, plus two consent checks:
 * - a request for an MCP server that names no scope of it (MCP clients often send none)
 *   asks the person about that server's `defaultScopes` instead of failing with
 *   access_denied; the consent page then grants them and records them as requested, so the
 *   code and tokens carry them;
 * - a request naming a dangerous scope always asks: remembered consent never grants one.
 * And one login check, at every authorization request and not only at sign-in: a request that
 * needs a second factor by policy (src/second-factors/policy.ts `policyRequires`: the person's
 * current roles in `requireForRoles`, the client in `requireForClients`, or `acr_values` naming
 * {@link ACR_MFA} — stricter than OpenID's "voluntary", on purpose) signs the person in again
 * unless the session had a second factor; that sign-in then requires one (and enrolment when
 * they have none, see src/second-factors/sign-in-step.ts). So a session signed in with a
 * password for another client, or before a role was given, does not pass without it.
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { ResourceRegistry } from './resources.js';
import type { SecondFactorConfig } from '../config/sign-in.js';
import { ACR_MFA, hasSecondFactorAmr, policyRequires } from '../second-factors/policy.js';
import { personOf } from './accounts.js';

const { base, Check } = interactionPolicy;

export function consentPolicy(resources: ResourceRegistry, secondFactor: SecondFactorConfig): interactionPolicy.Prompt[] {
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
  consent.checks.add(
    new Check('rs_dangerous_scopes', 'a dangerous scope is asked for; it is never granted from remembered consent', (ctx: KoaContextWithOIDC) => {
      // the person has just answered the consent page for this very request
      if ((ctx.oidc as { result?: { consent?: unknown } }).result?.consent) return Check.NO_NEED_TO_PROMPT;
      const requested = ctx.oidc.requestParamScopes;
      for (const [indicator, server] of Object.entries(ctx.oidc.resourceServers ?? {})) {
        const resource = resources.find(indicator);
        if (resource && [...requested].some((scope) => server.scopes.has(scope) && resources.isDangerous(resource, scope))) return Check.REQUEST_PROMPT;
      }
      return Check.NO_NEED_TO_PROMPT;
    }),
  );
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider has no login prompt');
  login.checks.add(
    new Check('second_factor_policy', 'this request needs a second factor and this session had none', (ctx: KoaContextWithOIDC) => {
      const { session, params, account } = ctx.oidc;
      // no session yet: the engine's own checks ask for the login, where the policy is applied
      if (!session?.accountId) return Check.NO_NEED_TO_PROMPT;
      if (session.acr === ACR_MFA || hasSecondFactorAmr(session.amr)) return Check.NO_NEED_TO_PROMPT;
      // the roles as they are now (loaded for this request), not as they were at sign-in
      const roles = personOf(account)?.roles ?? [];
      return policyRequires(secondFactor, { roles: [...roles] }, params ?? {}) ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT;
    }),
  );
  return policy;
}
