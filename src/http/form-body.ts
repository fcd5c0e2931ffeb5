/**
 * Reads an `application/x-www-form-urlencoded` body for our own forms, with a small size
 * cap. Repeated fields become arrays; the caller validates the shape with zod.
 */
import type { Context } from 'koa';

export class FormBodyError extends Error {
  override readonly name = 'FormBodyError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export const FORM_LIMIT_BYTES = 16 * 1024;

export async function readForm(ctx: Context, limit = FORM_LIMIT_BYTES): Promise<Record<string, string | string[]>> {
  if (!ctx.is('application/x-www-form-urlencoded')) throw new FormBodyError('expected a form submission', 415);
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > limit) throw new FormBodyError('form too large', 413);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new FormBodyError('form too large', 413);
    chunks.push(chunk);
  }
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}
