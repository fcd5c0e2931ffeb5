/**
 * What an audit record says about the HTTP request behind an event: its request id and its
 * source address (koa's `ctx.ip`, which honours `trustProxy`).
 */
import type { Context } from 'koa';
import type { AuditEvent } from './events.js';

export function requestFacts(ctx: Pick<Context, 'ip' | 'state'> | undefined): Pick<AuditEvent, 'requestId' | 'source'> {
  const facts: Pick<AuditEvent, 'requestId' | 'source'> = {};
  addRequestFacts(facts, ctx);
  return facts;
}

/** {@link requestFacts} written into `event` itself (the token path: no object to spread). */
export function addRequestFacts(event: Pick<AuditEvent, 'requestId' | 'source'>, ctx: Pick<Context, 'ip' | 'state'> | undefined): void {
  if (!ctx) return;
  const requestId = (ctx.state as { requestId?: unknown } | undefined)?.requestId;
  if (typeof requestId === 'string' && requestId) event.requestId = requestId;
  const source = ctx.ip;
  if (source) event.source = source;
}
