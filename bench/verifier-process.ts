/**
 * An MCP server's verifier in a process of its own, for bench/revocation: created as the README
 * shows (nothing but issuer and resource), answering GET /check with 200 for a token it accepts
 * and the challenge's status otherwise. Prints `listening <url>` once its feed is ready.
 *
 *   node dist/bench/verifier-process.js <issuer> <resource>
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createVerifier } from '../src/verifier/index.js';

const [issuer, resource] = process.argv.slice(2);
const verifier = createVerifier({ issuer: issuer!, resource: resource! });
await verifier.ready();
const server = createServer((req, res) => {
  verifier.authenticate(req.headers.authorization).then(
    () => res.writeHead(200).end(),
    (err: unknown) => res.writeHead(verifier.challenge(err).status).end(),
  );
});
server.listen(0, '127.0.0.1', () => console.log(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}`));
process.on('SIGTERM', () => {
  server.close();
  void verifier.close();
});
