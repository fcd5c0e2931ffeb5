/**
 * Runs a real, throwaway OpenLDAP `slapd` for a test file: free ports on 127.0.0.1 (one
 * `ldap://`, one `ldaps://` with a certificate signed by a CA made here with openssl), a
 * fresh temp directory (removed on stop), an mdb database loaded with `slapadd` before the
 * start. The directory, under dc=example,dc=test:
 *
 *   ou=people   alice (group finance), bob (group engineering), carol (no group),
 *               zoë (non-ASCII uid), all with PASSWORDS[uid]
 *   ou=groups   finance, engineering (groupOfNames)
 *   ou=services cn=reader (the service account: reads people and groups)
 *
 * The memberof overlay keeps `memberOf` on people for groups added while slapd runs (not for
 * those loaded by slapadd). ACLs: people can bind (and read themselves), the reader searches
 * everything but passwords, anonymous reads nothing. `allow bind_anon_dn` makes slapd accept
 * an "unauthenticated bind" (a DN with an empty password) as many directories do, so tests
 * can show that we never make one. slapd logs its operations (`-d stats`), kept in `log()`.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './redis.js';

export const SUFFIX = 'dc=example,dc=test';
export const ROOT_DN = `cn=admin,${SUFFIX}`;
export const READER_DN = `cn=reader,ou=services,${SUFFIX}`;
export const PEOPLE = `ou=people,${SUFFIX}`;
export const GROUPS = `ou=groups,${SUFFIX}`;
export const ROOT_PASSWORD = 'root-secret-for-tests';
export const READER_PASSWORD = 'reader-secret-for-tests';
export const PASSWORDS: Record<string, string> = {
  alice: 'alice-ldap-password',
  bob: 'bob-ldap-password',
  carol: 'carol-ldap-password',
  'zoë': 'zoe-ldap-password',
};

export const personDn = (uid: string) => `uid=${uid},${PEOPLE}`;

export interface Slapd {
  /** `ldap://127.0.0.1:PORT` (plain, StartTLS offered) */
  url: string;
  /** `ldaps://127.0.0.1:PORT` */
  ldapsUrl: string;
  /** PEM of the CA that signed the server certificate */
  ca: string;
  /** everything slapd has logged so far */
  log(): string;
  /** resolves once slapd has logged everything done before the call (a marker search, seen in the log) */
  logged(): Promise<void>;
  /** runs ldap-utils' `ldapmodify` as the root DN with this LDIF */
  modify(ldif: string): void;
  /** `ldapdelete` as the root DN */
  remove(dn: string): void;
  /** `ldapsearch` as the root DN: the LDIF it prints */
  search(base: string, filter: string, ...attributes: string[]): string;
  /** stops slapd (SIGTERM); `start` brings it back on the same ports and data */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** stops slapd and removes its directory */
  stop(): Promise<void>;
}

const missing = (program: string, pkg: string) => new Error(`${program} was not found: install ${pkg} (apt-get install ${pkg})`);

/** Runs a program to completion; fails naming it when it is missing or fails. */
function run(program: string, args: string[], pkg: string, input?: string): string {
  const result = spawnSync(program, args, { input, encoding: 'utf8', timeout: 30_000 });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw missing(program, pkg);
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${program} ${args.join(' ')} failed (${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

/** `{SSHA}` of a password, as slappasswd makes it: base64(sha1(password + salt) + salt). */
export function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password, 'utf8').update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** A test CA and a server certificate for 127.0.0.1 and localhost, made with openssl. */
function makeCertificates(dir: string): void {
  const at = (name: string) => join(dir, name);
  const ossl = (...args: string[]) => run('openssl', args, 'openssl');
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '2', '-subj', '/CN=mcp-authz slapd test CA');
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=localhost');
  writeFileSync(at('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  ossl('x509', '-req', '-in', at('server.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('server.pem'), '-days', '2', '-extfile', at('server.ext'));
}

function slapdConf(dir: string): string {
  return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile ${join(dir, 'slapd.pid')}
argsfile ${join(dir, 'slapd.args')}
TLSCACertificateFile ${join(dir, 'ca.pem')}
TLSCertificateFile ${join(dir, 'server.pem')}
TLSCertificateKeyFile ${join(dir, 'server.key')}
allow bind_anon_dn
database mdb
maxsize 16777216
suffix "${SUFFIX}"
rootdn "${ROOT_DN}"
rootpw ${ssha(ROOT_PASSWORD)}
directory ${join(dir, 'data')}
overlay memberof
access to attrs=userPassword
  by anonymous auth
  by self auth
  by * none
access to *
  by dn.exact="${READER_DN}" read
  by self read
  by * none
`;
}

function person(uid: string, cn: string, sn: string): string {
  return `dn: ${personDn(uid)}
objectClass: inetOrgPerson
uid: ${uid}
cn: ${cn}
sn: ${sn}
mail: ${uid.normalize('NFD').replace(/[^\x20-\x7e]/g, '')}@example.test
userPassword: ${ssha(PASSWORDS[uid]!)}
`;
}

function group(cn: string, members: string[]): string {
  return `dn: cn=${cn},${GROUPS}
objectClass: groupOfNames
cn: ${cn}
${members.map((m) => `member: ${m}`).join('\n')}
`;
}

function data(): string {
  // LDIF values that are not plain ASCII are base64 (`attr:: …`)
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
  return [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n`,
    `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n`,
    `dn: ${GROUPS}\nobjectClass: organizationalUnit\nou: groups\n`,
    `dn: ou=services,${SUFFIX}\nobjectClass: organizationalUnit\nou: services\n`,
    `dn: ${READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: ${ssha(READER_PASSWORD)}\n`,
    person('alice', 'Alice Liddell', 'Liddell'),
    person('bob', 'Bob Builder', 'Builder'),
    person('carol', 'Carol Danvers', 'Danvers'),
    `dn:: ${b64(personDn('zoë'))}\nobjectClass: inetOrgPerson\nuid:: ${b64('zoë')}\ncn:: ${b64('Zoë Washburne')}\nsn: Washburne\nmail: zoe@example.test\nuserPassword: ${ssha(PASSWORDS['zoë']!)}\n`,
    group('finance', [personDn('alice')]),
    group('engineering', [personDn('bob')]),
  ].join('\n');
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => done(true));
  });
}

export async function startSlapd(): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-authz-slapd-'));
  let child: ChildProcess | undefined;
  let output = '';
  const conf = join(dir, 'slapd.conf');
  const [port, tlsPort] = [await freePort(), await freePort()];
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${tlsPort}`;

  const spawnSlapd = async () => {
    const started = spawn('/usr/sbin/slapd', ['-f', conf, '-h', `${url}/ ${ldapsUrl}/`, '-d', 'stats'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const failed = new Promise<never>((_, reject) => {
      started.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? missing('slapd', 'slapd') : err));
      started.once('exit', (code, signal) => reject(new Error(`slapd exited early (${signal ?? code}): ${output.slice(-2000)}`)));
    });
    failed.catch(() => {});
    started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child = started;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      await Promise.race([failed, sleep(50)]);
      if ((await accepts(port)) && (await accepts(tlsPort))) return;
    }
    started.kill('SIGKILL');
    throw new Error(`slapd did not listen on ${port} and ${tlsPort} within 15 s: ${output.slice(-2000)}`);
  };

  const killOnExit = () => child?.kill('SIGKILL');
  try {
    mkdirSync(join(dir, 'data'));
    makeCertificates(dir);
    writeFileSync(conf, slapdConf(dir));
    writeFileSync(join(dir, 'data.ldif'), data());
    run('/usr/sbin/slapadd', ['-f', conf, '-l', join(dir, 'data.ldif')], 'slapd');
    process.once('exit', killOnExit);
    await spawnSlapd();
  } catch (err) {
    child?.kill('SIGKILL');
    process.removeListener('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const asRoot = ['-x', '-H', url, '-D', ROOT_DN, '-w', ROOT_PASSWORD];
  const stopChild = async () => {
    if (!child) return;
    child.kill('SIGTERM');
    await exited(child);
    child = undefined;
  };
  return {
    url,
    ldapsUrl,
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    log: () => output,
    async logged() {
      const marker = `logged-${randomBytes(6).toString('hex')}`;
      await new Promise<void>((resolve, reject) =>
        execFile('ldapsearch', [...asRoot, '-LLL', '-b', SUFFIX, `(cn=${marker})`, 'cn'], { timeout: 10_000 }, (err) => (err ? reject(err) : resolve())),
      );
      const deadline = Date.now() + 10_000;
      while (!output.includes(marker)) {
        if (Date.now() > deadline) throw new Error('slapd did not log the marker search within 10 s');
        await sleep(20);
      }
    },
    modify: (ldif) => void run('ldapmodify', asRoot, 'ldap-utils', ldif),
    remove: (dn) => void run('ldapdelete', [...asRoot, dn], 'ldap-utils'),
    search: (base, filter, ...attributes) => run('ldapsearch', [...asRoot, '-LLL', '-b', base, filter, ...attributes], 'ldap-utils'),
    kill: stopChild,
    async start() {
      if (!child) await spawnSlapd();
    },
    async stop() {
      process.removeListener('exit', killOnExit);
      await stopChild();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
