/**
 * What the consent page offers for each requested scope, and what a submitted form means.
 * One rule set for showing and for deciding, so the page never offers what the decision
 * would not grant:
 * - a scope the person's role or name does not allow (`scopes[…].allow`) is shown as not
 *   available, never silently hidden, and never granted;
 * - a dangerous scope is asked every time, unticked — remembered consent never grants it;
 * - a scope the person already allowed (step-up) is shown as such and kept;
 * - everything else is asked, preselected.
 */
import type { ResourceRegistry, Person } from '../provider/resources.js';
import type { RequestedResource } from './describe.js';

export type ChoiceState = 'ask' | 'kept' | 'unavailable';

export interface ScopeChoice {
  scope: string;
  state: ChoiceState;
  dangerous: boolean;
  /** preselected on the page */
  preselected: boolean;
}

export function consentChoices(registry: ResourceRegistry, requested: RequestedResource, alreadyGranted: ReadonlySet<string>, person: Person): ScopeChoice[] {
  return requested.scopes.map((scope) => {
    const dangerous = registry.isDangerous(requested.resource, scope);
    if (!registry.personMayHave(requested.resource, scope, person)) return { scope, state: 'unavailable', dangerous, preselected: false };
    if (dangerous) return { scope, state: 'ask', dangerous, preselected: false };
    if (alreadyGranted.has(scope)) return { scope, state: 'kept', dangerous, preselected: true };
    return { scope, state: 'ask', dangerous, preselected: true };
  });
}

export interface ConsentDecision {
  /** newly allowed now */
  granted: string[];
  /** asked and left unticked (a dangerous scope allowed before and not ticked again is among them) */
  refused: string[];
  /** allowed before and kept */
  kept: string[];
  /** not available to this person */
  unavailable: string[];
}

/** What the ticked boxes (`isTicked(scope)`) decide for one resource. */
export function decide(choices: readonly ScopeChoice[], isTicked: (scope: string) => boolean): ConsentDecision {
  const of = (state: ChoiceState) => choices.filter((c) => c.state === state).map((c) => c.scope);
  const asked = of('ask');
  return {
    granted: asked.filter(isTicked),
    refused: asked.filter((scope) => !isTicked(scope)),
    kept: of('kept'),
    unavailable: of('unavailable'),
  };
}
