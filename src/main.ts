#!/usr/bin/env node
/**
 * Process entry of `mcp-authz`. The command line is loaded lazily so that an install
 * without the server's optional dependencies (`npm install --omit=optional`, which is how
 * MCP servers take just `mcp-authz/verifier`) says so plainly instead of crashing.
 */
try {
  const { run } = await import('./cli/run.js');
  process.exitCode = await run(process.argv.slice(2));
} catch (err) {
  const missing = (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND';
  const name = missing ? /Cannot find package '([^']+)'/.exec((err as Error).message)?.[1] : undefined;
  process.stderr.write(
    missing
      ? `mcp-authz: the server needs its optional dependencies${name ? ` (${name} is missing)` : ''}; install mcp-authz without --omit=optional\n`
      : `mcp-authz: ${(err as Error).message}\n`,
  );
  process.exitCode = 1;
}
