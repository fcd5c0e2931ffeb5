// Resolves 'fs' to fs-shim.mjs for the conformance tool's own code only, and only when the
// running Node.js lacks fs.globSync.
import * as fs from 'node:fs';

const hasGlobSync = typeof fs.globSync === 'function';

export async function resolve(specifier, context, next) {
  if (!hasGlobSync && (specifier === 'fs' || specifier === 'node:fs') && context.parentURL?.includes('/@modelcontextprotocol/conformance/dist/')) {
    return { url: new URL('./fs-shim.mjs', import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
