/**
 * A form of ours, read the one way every page reads them: the body (./form-body.ts), its CSRF
 * token checked first — a form without a valid token is refused as such, whatever else it
 * holds — then its shape parsed with zod. Refusals are readable pages (403, 400).
 */
import type { Context } from 'koa';
import type { z } from 'zod';
import type { Csrf } from './csrf.js';
import { readForm } from './form-body.js';
import { PageError } from './page-error.js';

export async function readCheckedForm<T extends z.ZodTypeAny>(ctx: Context, csrf: Csrf, purpose: string, schema: T): Promise<z.infer<T>> {
  const raw = await readForm(ctx);
  if (!csrf.verify(ctx, purpose, raw.csrf)) {
    throw new PageError(403, 'Request blocked', 'This form has expired or did not come from this site. Go back, reload the page and try again.');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new PageError(400, 'Invalid request', 'The form was incomplete or malformed. Go back and try again.');
  return parsed.data;
}
