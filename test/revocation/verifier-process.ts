/**
 * Run as a child process by cross-process.test.ts: an MCP-server-like process that verifies
 * tokens with mcp-authz/verifier created exactly as the README shows it, with nothing but
 * `issuer` and `resource` (the revocation feed is followed by default), and answers GET /check
 * with the verifier's status for the presented bearer token. Prints its URL on the first line.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createVerifier } from '../../src/verifier/index.js';

const [issuer, resource] = process.argv.slice(2);
const verifier = createVerifier({ issuer: issuer!, resource: resource! });
await verifier.ready();

const server = createServer((req, res) => {
  verifier.authenticate(req.headers.authorization).then(
    () => res.writeHead(200).end('ok'),
    (err: unknown) => {
      const { status, headers } = verifier.challenge(err);
      res.writeHead(status, headers).end();
    },
  );
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  void verifier.close();
});
