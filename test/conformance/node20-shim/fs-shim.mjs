// @modelcontextprotocol/conformance imports `globSync` from 'fs' (Node >= 22) for one command we do
// not use (tier-check). On Node 20 that import fails at load; this module stands in for 'fs'.
import fs from 'node:fs';
export * from 'node:fs';
export default fs;
export function globSync() {
  throw new Error('fs.globSync is not available on this Node.js version');
}
