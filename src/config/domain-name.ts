/**
 * A domain name in the configuration (CIMD domain policies, connections' home-realm domains),
 * compared as host names are (./uri.ts normalizeHostname): any case, IDN or punycode, a trailing
 * dot or none. Parses to the normalised name.
 */
import { z } from 'zod';
import { normalizeHostname } from './uri.js';

const DOMAIN_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const domainNameSchema = z.string().transform((v, ctx) => {
  const name = normalizeHostname(v);
  if (name === undefined || !DOMAIN_NAME.test(name)) {
    ctx.addIssue({ code: 'custom', message: 'a domain name such as example.com' });
    return z.NEVER;
  }
  return name;
});
