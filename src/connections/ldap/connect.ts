/**
 * One connection to the directory, as each sign-in and each refresh check opens it: TLS from
 * the start (`ldaps://`) or upgraded by StartTLS before anything else is sent, with the
 * configured CA and certificate check, every step bounded by the connection's `timeout`.
 * The caller closes it (`close`), whatever happened; a close never throws.
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Client } from 'ldapts';
import type { LdapConnectionConfig } from '../../config/sign-in.js';

export interface Directory {
  client: Client;
  close(): Promise<void>;
}

/** The host of an `ldap(s)://host[:port]` URL, brackets of an IPv6 address removed. */
export function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '');
}

/** TLS options: the CA, the certificate check, and the name the certificate must carry. */
export function tlsOptions(config: LdapConnectionConfig): ConnectionOptions {
  const host = hostOf(config.url);
  return {
    ...(config.tls.ca ? { ca: config.tls.ca } : {}),
    rejectUnauthorized: config.tls.rejectUnauthorized,
    host,
    // SNI carries names only, never addresses (the check still uses `host`)
    ...(isIP(host) ? {} : { servername: host }),
    minVersion: 'TLSv1.2',
  };
}

/** Rejects with "timed out" when `promise` takes longer than `ms`; `onTimeout` cleans up. */
export async function within<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what}: timed out after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a connection, TLS in place, not yet bound. */
export async function connect(config: LdapConnectionConfig): Promise<Directory> {
  const tls = tlsOptions(config);
  const client = new Client({
    url: config.url,
    timeout: config.timeout,
    connectTimeout: config.timeout,
    strictDN: false,
    ...(config.url.startsWith('ldaps:') ? { tlsOptions: tls } : {}),
  });
  const close = async () => {
    await client.unbind().catch(() => {});
  };
  if (config.startTls) {
    try {
      // the socket, then the StartTLS request and the handshake, each within the timeout
      await within(client.startTLS({ ...tls }), config.timeout * 2, 'StartTLS', () => void close());
    } catch (err) {
      await close();
      throw err;
    }
  }
  return { client, close };
}
