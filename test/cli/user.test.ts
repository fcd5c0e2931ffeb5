/**
 * The `user` commands, run as the built CLI in a child process against a SQLite store in a
 * temp dir, with the password piped on stdin.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { openStore } from '../../adapters/index.js';
import { createAccountService } from '../../src/accounts/service.js';
import { parseCommandLine } from '../../src/cli/args.js';
import { createSecretReader, SecretInterruptedError } from '../../src/cli/read-secret.js';
import { runUserCommand } from '../../src/cli/user-commands.js';
import { runCli, type CliResult } from '../helpers/cli.js';

const dataDir = mkdtempSync(join(tmpdir(), 'mcp-authz-user-cli-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

const PASSWORD = 'first-Secret-9f3k2';
const NEW_PASSWORD = 'second-Secret-7h2m1';
/** every password any test sends; none may ever be printed */
const SECRETS = [PASSWORD, NEW_PASSWORD, 'short', 'never-on-argv-123'];

/** Runs `mcp-authz ARGS` with `stdin` piped in; fails if a password or its hash is printed. */
async function cli(args: string[], stdin = ''): Promise<CliResult> {
  const result = await runCli(args, { dataDir, stdin });
  const printed = result.stdout + result.stderr;
  if (SECRETS.some((secret) => printed.includes(secret))) throw new Error(`a password was printed by: ${args.join(' ')}`);
  if (printed.includes('scrypt$')) throw new Error(`a password hash was printed by: ${args.join(' ')}`);
  return result;
}

/** Checks a password against the store the CLI wrote. */
async function signsIn(username: string, password: string): Promise<boolean> {
  const store = await openStore({ dataDir, redisKeyPrefix: 'unused:' });
  try {
    return (await createAccountService(store.accounts).authenticate(username, password)) !== undefined;
  } finally {
    await store.close();
  }
}

test('user add creates an account with its roles, password from stdin', async () => {
  const add = await cli(['user', 'add', 'alice', '--role', 'admin'], `${PASSWORD}\n`);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /created user alice .*roles: admin/);
  assert.equal(await signsIn('alice', PASSWORD), true);
  assert.equal(await signsIn('alice', NEW_PASSWORD), false);

  const list = await cli(['user', 'list']);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^USERNAME\s+SIGN-IN\s+ROLES\s+CREATED$/);
  const alice = lines.find((l) => l.startsWith('alice '));
  assert.ok(alice, list.stdout);
  assert.match(alice, /^alice\s+local\s+admin\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});

test('user add refuses a taken name, whatever its case, with exit 1', async () => {
  await cli(['user', 'add', 'dora'], `${PASSWORD}\n`);
  for (const name of ['dora', 'DORA']) {
    const dup = await cli(['user', 'add', name], `${PASSWORD}\n`);
    assert.equal(dup.code, 1, dup.stderr);
    assert.match(dup.stderr, /mcp-authz: an account named "dora" already exists\n$/);
    assert.equal(dup.stdout, '');
  }
});

test('user passwd sets a new password read from stdin', async () => {
  assert.equal((await cli(['user', 'add', 'bob', '--role', 'ops', '--role', 'dev'], `${PASSWORD}\r\n`)).code, 0);
  const passwd = await cli(['user', 'passwd', 'bob'], `${NEW_PASSWORD}\n`);
  assert.equal(passwd.code, 0, passwd.stderr);
  assert.match(passwd.stdout, /password changed for user bob/);
  assert.equal(await signsIn('bob', NEW_PASSWORD), true);
  assert.equal(await signsIn('bob', PASSWORD), false);

  const missing = await cli(['user', 'passwd', 'nobody'], `${NEW_PASSWORD}\n`);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no account named "nobody"/);
});

test('user roles replaces the roles', async () => {
  await cli(['user', 'add', 'erin', '--role', 'viewer'], `${PASSWORD}\n`);
  const roles = await cli(['user', 'roles', 'erin', '--role', 'editor', '--role', 'admin']);
  assert.equal(roles.code, 0, roles.stderr);
  const list = await cli(['user', 'list']);
  assert.match(list.stdout, /^erin\s+local\s+editor,admin\s/m);
});

test('user remove deletes the account', async () => {
  await cli(['user', 'add', 'carol'], `${PASSWORD}\n`);
  const remove = await cli(['user', 'remove', 'carol']);
  assert.equal(remove.code, 0, remove.stderr);
  assert.match(remove.stdout, /removed user carol/);
  assert.doesNotMatch((await cli(['user', 'list'])).stdout, /^carol\s/m);
  assert.equal(await signsIn('carol', PASSWORD), false);
  const again = await cli(['user', 'remove', 'carol']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /no account named "carol"/);
});

test('a password cannot be given on the command line', async () => {
  for (const args of [
    ['user', 'add', 'mallory', '--password', 'never-on-argv-123'],
    ['user', 'add', 'mallory', '--password=never-on-argv-123'],
    ['user', 'passwd', 'alice', '--password', 'never-on-argv-123'],
    ['user', 'add', 'mallory', 'never-on-argv-123'],
  ]) {
    const result = await cli(args, `${PASSWORD}\n`);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
  }
  assert.doesNotMatch((await cli(['user', 'list'])).stdout, /mallory/);
  assert.equal(await signsIn('alice', 'never-on-argv-123'), false);
});

test('usage errors exit 2 and name the problem', async () => {
  const cases: [string[], RegExp][] = [
    [['user', 'frobnicate'], /unknown user subcommand "frobnicate"/],
    [['user', 'add'], /user add needs NAME/],
    [['user', 'remove'], /user remove needs NAME/],
    [['user', 'list', 'extra'], /user list takes no arguments \(got 1\)/],
    [['user', 'remove', 'a', 'b'], /user remove takes only NAME \(got 2\)/],
    [['user', 'list', '--role', 'x'], /user list does not take --role/],
    [['user', 'add', 'x', '--admin', 'yes'], /user add does not take --admin/],
    [['user', 'add', 'bad name'], /invalid NAME "bad name": must be 1 to 64 characters/],
    [['user', 'add', 'frank', '--role', 'Admin'], /invalid --role "Admin": a role is a lowercase letter/],
    [['user', 'roles', 'alice'], /user roles needs at least one --role/],
  ];
  for (const [args, message] of cases) {
    const result = await cli(args, `${PASSWORD}\n`);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.equal(result.stdout, '');
  }
});

test('a refused or missing password exits 1 and creates nothing', async () => {
  const short = await cli(['user', 'add', 'gina'], 'short\n');
  assert.equal(short.code, 1);
  assert.match(short.stderr, /password: must be at least 8 characters/);
  const empty = await cli(['user', 'add', 'gina'], '');
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /no password on standard input/);
  assert.doesNotMatch((await cli(['user', 'list'])).stdout, /gina/);
});

/** A fake terminal: bytes written to `keys` arrive as typed; raw mode is recorded. */
function fakeTerminal() {
  const stdin = Object.assign(new PassThrough(), {
    isTTY: true,
    rawModes: [] as boolean[],
    setRawMode(mode: boolean) {
      stdin.rawModes.push(mode);
      return stdin;
    },
  });
  const stderr = new PassThrough();
  let shown = '';
  stderr.setEncoding('utf8').on('data', (d: string) => (shown += d));
  const stdout = new PassThrough();
  let printed = '';
  stdout.setEncoding('utf8').on('data', (d: string) => (printed += d));
  return { stdin, stderr, stdout, shown: () => shown, printed: () => printed };
}

test('on a terminal: prompts on stderr, echo off, backspace, Ctrl-U, Enter, escape sequences', async () => {
  const term = fakeTerminal();
  const reader = createSecretReader(term);
  assert.equal(reader.interactive, true);
  const first = reader.read('Password: ');
  term.stdin.write('pass\u007fsword\u001b[D1\r'); // backspace removes the second "s", arrow-left is ignored
  assert.equal(await first, 'password1');
  const second = reader.read('Repeat password: ');
  term.stdin.write('junk\u0015real\u{1F511}pw\r\nnext\r'); // Ctrl-U clears; "\r\n" is one Enter
  assert.equal(await second, 'real\u{1F511}pw');
  assert.equal(await reader.read('Again: '), 'next', 'input typed ahead is kept');
  reader.close();
  assert.equal(term.shown(), 'Password: \nRepeat password: \nAgain: \n');
  assert.deepEqual(term.stdin.rawModes, [true, false, true, false, true, false]);
});

test('on a terminal: Ctrl-C interrupts and restores the terminal', async () => {
  const term = fakeTerminal();
  const reader = createSecretReader(term);
  const read = reader.read('Password: ');
  term.stdin.write('abc\u0003');
  await assert.rejects(read, SecretInterruptedError);
  reader.close();
  assert.deepEqual(term.stdin.rawModes, [true, false]);
});

test('from a pipe: the first line, without its line ending, and no prompt', async () => {
  const term = fakeTerminal();
  const stdin = new PassThrough();
  const reader = createSecretReader({ stdin, stderr: term.stderr });
  assert.equal(reader.interactive, false);
  stdin.end('line one\r\nline two\n');
  assert.equal(await reader.read('Password: '), 'line one');
  reader.close();
  assert.equal(term.shown(), '');
});

test('user add on a terminal asks twice; a mismatch exits 1, Ctrl-C exits 130', async () => {
  const store = await openStore({ dataDir: mkdtempSync(join(dataDir, 'tty-')), redisKeyPrefix: 'unused:' });
  try {
    const run = async (args: string[], keys: string) => {
      const term = fakeTerminal();
      const done = runUserCommand(parseCommandLine(args), store, term);
      setTimeout(() => term.stdin.write(keys), 10);
      return { code: await done, shown: term.shown(), printed: term.printed() };
    };
    const ok = await run(['user', 'add', 'tina'], `${PASSWORD}\r${PASSWORD}\r`);
    assert.equal(ok.code, 0, ok.shown);
    assert.equal(ok.shown, 'Password: \nRepeat password: \n');
    assert.match(ok.printed, /created user tina/);
    assert.ok(!(ok.shown + ok.printed).includes(PASSWORD), 'no echo');

    const mismatch = await run(['user', 'passwd', 'tina'], `${NEW_PASSWORD}\r${PASSWORD}\r`);
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.shown, /mcp-authz: the passwords do not match\n$/);

    const interrupted = await run(['user', 'passwd', 'tina'], 'half\u0003');
    assert.equal(interrupted.code, 130);
    assert.equal((await createAccountService(store.accounts).authenticate('tina', PASSWORD))?.username, 'tina', 'password unchanged');
  } finally {
    await store.close();
  }
});
