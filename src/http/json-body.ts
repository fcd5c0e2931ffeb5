/**
 * Reads a small `application/json` body for our own JSON endpoints (those MCP servers call),
 * with a size cap checked both on the declared length and while reading, so a large or
 * endless body is refused without being held in memory. The caller validates the shape with zod.
 */
import type { Context } from 'koa';

export class JsonBodyError extends Error {
  override readonly name = 'JsonBodyError';
  constructor(
    message: string,
    /** 400 (not JSON), 413 (too large) */
    readonly status: 400 | 413,
  ) {
    super(message);
  }
}

export async function readJson(ctx: Context, limit: number): Promise<unknown> {
  if (!ctx.is('application/json')) throw new JsonBodyError('expected an application/json body', 400);
  const declared = ctx.request.length;
  if (declared !== undefined && declared > limit) throw new JsonBodyError(`the body is larger than ${limit} bytes`, 413);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new JsonBodyError(`the body is larger than ${limit} bytes`, 413);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new JsonBodyError('the body is not valid JSON', 400);
  }
}
