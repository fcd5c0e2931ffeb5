#!/usr/bin/env node
// What `npm test` needs besides node_modules: redis-server (tests start their own, on a free
// port), Chromium at /usr/bin/chromium (pages are tested in a real browser), Go with the sprig
// sources (the helm chart is rendered), slapd and ldap-utils (the LDAP connection is tested
// against a real directory) and openssl (the test CA, directory and SAML identity provider
// certificates). Run before the
// build, so a machine without them learns it in seconds: as root with apt-get they are
// installed (as .ci/run does); otherwise one line says what to install, and the tests do not run.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { delimiter, join } from 'node:path';

const onPath = (program) => (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, program)));

// Debian package → whether what the tests use of it is here. Go and the sprig and yaml.v3 sources
// render the helm chart with the engine helm uses (test/deploy/render), where helm itself is absent.
const PACKAGES = {
  'redis-server': () => onPath('redis-server'),
  chromium: () => existsSync('/usr/bin/chromium'),
  'golang-go': () => onPath('go'),
  'golang-github-masterminds-sprig-dev': () => existsSync('/usr/share/gocode/src/github.com/Masterminds/sprig'),
  'golang-gopkg-yaml.v3-dev': () => existsSync('/usr/share/gocode/src/gopkg.in/yaml.v3'),
  // the LDAP connection is tested against a real OpenLDAP the tests start (test/helpers/slapd.ts);
  // a system slapd the package may start is not used. openssl makes the test certificates (the
  // directory's CA, the test SAML identity provider's signing certificate)
  slapd: () => existsSync('/usr/sbin/slapd') && existsSync('/usr/sbin/slapadd'),
  'ldap-utils': () => onPath('ldapmodify') && onPath('ldapdelete') && onPath('ldapsearch'),
  openssl: () => onPath('openssl'),
};
const lacking = () => Object.keys(PACKAGES).filter((name) => !PACKAGES[name]());
const missing = lacking();
if (missing.length === 0) process.exit(0);

const install = `apt-get install ${missing.join(' ')}`;
if (process.getuid?.() !== 0 || !onPath('apt-get')) {
  console.error(`npm test needs ${missing.join(' and ')}, which ${missing.length === 1 ? 'is' : 'are'} not installed: ${install} (Debian/Ubuntu), then run npm test again.`);
  process.exit(1);
}
console.error(`npm test needs ${missing.join(' and ')}: installing (${install})`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...missing]]) {
  const result = spawnSync('apt-get', args, { stdio: 'inherit', env, timeout: 15 * 60_000 });
  if (result.status !== 0) {
    console.error(`npm test could not install ${missing.join(' and ')} (apt-get ${args[0]} failed): ${install}, then run npm test again.`);
    process.exit(1);
  }
}
const still = lacking();
if (still.length) {
  console.error(`npm test still lacks ${still.join(' and ')} after apt-get install (a package installed with its program removed?): reinstall it (apt-get install --reinstall ${still.join(' ')}), then run npm test again.`);
  process.exit(1);
}
