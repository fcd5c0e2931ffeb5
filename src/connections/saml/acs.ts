/**
 * The assertion consumer service: `POST /connections/<id>/saml/acs`, where the identity
 * provider's page posts the answer (HTTP-POST binding).
 *
 * The body is read with a size bound and `SAMLResponse` must be base64 of an XML document
 * without a DOCTYPE. node-saml then checks the signatures, `InResponseTo` against our pending
 * requests (taking the request: single use), timestamps and audience (./options.ts);
 * ./confirm.ts checks what node-saml leaves out; the assertion ID must be new
 * (./seen-assertions.ts). What it says of the person goes to `complete`, which keeps it and
 * sends the browser on to the interaction's own path (the POST is cross-site and carries none
 * of the engine's SameSite=Lax cookies; src/interactions/connection-sign-in.ts). Anything
 * wrong is refused with a readable page (./refusal.ts) — never a 500, never the assertion in
 * a log.
 */
import { SAML, type Profile } from '@node-saml/node-saml';
import type { Context } from 'koa';
import { isStoreUnavailable } from '../../../adapters/contract.js';
import type { SamlConnectionConfig } from '../../config/sign-in.js';
import type { CompleteSignIn } from '../driver.js';
import { FormBodyError, readForm } from '../../http/form-body.js';
import { describeWait, tooManyRequestsPage } from '../../http/limits.js';
import type { DriverContext } from '../registry.js';
import { AnswerRefused, confirmAssertion, confirmResponse } from './confirm.js';
import { identityFromProfile } from './identity.js';
import { samlOptions } from './options.js';
import { reasonOf, refuse } from './refusal.js';
import { RequestLedger } from './request-ledger.js';
import { SeenAssertions } from './seen-assertions.js';
import type { SamlUrls } from './urls.js';

/** A signed response with a few certificates and many groups stays well under this. */
export const ACS_BODY_LIMIT = 256 * 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function assertionConsumer(connection: SamlConnectionConfig, context: DriverContext, urls: SamlUrls, complete: CompleteSignIn) {
  const seen = new SeenAssertions(context.store, connection.id);
  const expected = { idpIssuer: connection.idpIssuer, acs: urls.acs, clockSkewMs: connection.clockSkew * 1000 };

  return async function acs(ctx: Context): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    const ledger = new RequestLedger(context.pending, connection.id);
    const refused = (reason: string, detail: string, status = 400) =>
      refuse(context, connection, ctx, { reason, detail, status, client: ledger.taken?.values.clientId });

    // counted as a sign-in attempt from this source before anything is read: refusals stay counted
    const attempt = await context.limits.upstreamAnswer(ctx.ip);
    if ('refused' in attempt) {
      context.limits.logHit(ctx, attempt.refused, {});
      const wait = describeWait(attempt.refused.retryAfterMs);
      return tooManyRequestsPage(ctx, context.render, attempt.refused.retryAfterMs, 'Too many sign-in attempts', `Too many failed sign-ins from here. Wait ${wait}, then try again.`);
    }

    let form: Record<string, string | string[]>;
    try {
      form = await readForm(ctx, ACS_BODY_LIMIT);
    } catch (err) {
      if (err instanceof FormBodyError) throw refused('saml_malformed', err.message, err.status);
      throw err;
    }
    const encoded = typeof form.SAMLResponse === 'string' ? form.SAMLResponse.replace(/\s+/g, '') : '';
    if (!BASE64.test(encoded)) throw refused('saml_malformed', 'SAMLResponse missing or not base64');
    const xml = Buffer.from(encoded, 'base64').toString('utf8');
    if (!xml.trimStart().startsWith('<') || /<!DOCTYPE/i.test(xml)) throw refused('saml_malformed', 'SAMLResponse is not an XML document without DOCTYPE');

    let profile: Profile | null;
    try {
      ({ profile } = await new SAML(samlOptions(connection, urls, context.config.ttl.interaction, ledger)).validatePostResponseAsync({ SAMLResponse: encoded }));
    } catch (err) {
      if (isStoreUnavailable(err)) throw err;
      throw refused(reasonOf(err), String((err as Error)?.message));
    }
    const request = ledger.taken;
    if (!profile || !request || !ledger.requestId) throw refused(profile ? 'saml_unsolicited' : 'saml_idp_refused', 'no profile or no pending request');

    let identity;
    try {
      confirmResponse(xml, expected);
      const confirmed = confirmAssertion(profile.getAssertion?.(), { ...expected, inResponseTo: ledger.requestId });
      if (!(await seen.remember(confirmed.assertionId, confirmed.validUntil))) throw new AnswerRefused('saml_replayed', 'assertion ID seen before');
      identity = identityFromProfile(profile, connection);
    } catch (err) {
      if (err instanceof AnswerRefused) throw refused(err.reason, err.message);
      throw err;
    }

    await attempt.succeeded();
    await complete(ctx, connection, request.uid, identity);
  };
}
