import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { AccountExistsError, type AccountRecord, type AccountStore } from '../../adapters/contract.js';
import { needsRehash, verifyPassword } from '../../src/accounts/password.js';
import { AccountInputError, AccountNotFoundError, createAccountService, DUMMY_HASH } from '../../src/accounts/service.js';

/** A Map-backed AccountStore: enough for the service; real stores have their own contract suite. */
class MemoryAccountStore implements AccountStore {
  readonly records = new Map<string, AccountRecord>();
  lookups = 0;

  async create(record: AccountRecord): Promise<void> {
    if (this.records.has(record.username)) throw new AccountExistsError(record.username);
    this.records.set(record.username, structuredClone(record));
  }
  async findByUsername(username: string): Promise<AccountRecord | undefined> {
    this.lookups++;
    const record = this.records.get(username);
    return record && structuredClone(record);
  }
  async findById(id: string): Promise<AccountRecord | undefined> {
    const record = [...this.records.values()].find((r) => r.id === id);
    return record && structuredClone(record);
  }
  async list(): Promise<AccountRecord[]> {
    return [...this.records.values()].sort((a, b) => a.username.localeCompare(b.username)).map((r) => structuredClone(r));
  }
  async update(username: string, patch: { passwordHash?: string; roles?: string[] }): Promise<boolean> {
    const record = this.records.get(username);
    if (!record) return false;
    this.records.set(username, { ...record, ...patch, updatedAt: Date.now() });
    return true;
  }
  async remove(username: string): Promise<boolean> {
    return this.records.delete(username);
  }
}

const PASSWORD = 'correct horse battery staple';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function setup() {
  const store = new MemoryAccountStore();
  return { store, accounts: createAccountService(store, () => 1_700_000_000_000) };
}

test('create stores a random id, the lowercased name, deduplicated roles and a hash', async () => {
  const { store, accounts } = setup();
  const created = await accounts.create('Alice.Smith@example', PASSWORD, ['admin', 'editor', 'admin']);
  assert.match(created.id, UUID);
  assert.equal(created.username, 'alice.smith@example');
  assert.deepEqual(created.roles, ['admin', 'editor']);
  assert.equal(created.createdAt, 1_700_000_000_000);
  assert.equal(created.updatedAt, 1_700_000_000_000);
  const stored = store.records.get('alice.smith@example')!;
  assert.deepEqual(stored, created);
  assert.ok(!stored.passwordHash.includes(PASSWORD));
  assert.equal(await verifyPassword(PASSWORD, stored.passwordHash), true);
  const other = await accounts.create('bob', PASSWORD);
  assert.notEqual(other.id, created.id);
  assert.deepEqual(other.roles, []);
});

test('authenticate returns the account for the right password, case-insensitively', async () => {
  const { accounts } = setup();
  const created = await accounts.create('alice', PASSWORD, ['admin']);
  assert.deepEqual(await accounts.authenticate('alice', PASSWORD), created);
  assert.deepEqual(await accounts.authenticate('ALICE', PASSWORD), created);
});

test('unknown user and wrong password both give undefined, never a throw', async () => {
  const { accounts } = setup();
  await accounts.create('alice', PASSWORD);
  assert.equal(await accounts.authenticate('alice', 'wrong password'), undefined);
  assert.equal(await accounts.authenticate('mallory', PASSWORD), undefined);
  assert.equal(await accounts.authenticate('not a valid name', PASSWORD), undefined);
  assert.equal(await accounts.authenticate('', ''), undefined);
  assert.equal(await accounts.authenticate('alice', 'short'), undefined);
  assert.equal(await accounts.authenticate('alice', 'x'.repeat(5000)), undefined);
  assert.equal(await accounts.authenticate(undefined as unknown as string, null as unknown as string), undefined);
});

test('an unknown user costs a full password check (the dummy hash is current)', async () => {
  assert.equal(needsRehash(DUMMY_HASH), false, 'DUMMY_HASH must be re-made with the current parameters');
  const { accounts } = setup();
  await accounts.create('alice', PASSWORD);
  const time = async (username: string) => {
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await accounts.authenticate(username, 'wrong password');
      samples.push(performance.now() - started);
    }
    return samples.sort((a, b) => a - b)[1]!;
  };
  const wrongPassword = await time('alice');
  const unknownUser = await time('mallory');
  const invalidName = await time('in valid');
  // loose bounds: without the dummy check the unknown-user case would take ~0 ms
  assert.ok(unknownUser > wrongPassword * 0.3, `unknown user ${unknownUser} ms vs wrong password ${wrongPassword} ms`);
  assert.ok(invalidName > wrongPassword * 0.3, `invalid name ${invalidName} ms vs wrong password ${wrongPassword} ms`);
});

test('a hash with old parameters (N = 2^15, what earlier versions wrote) is upgraded on a successful sign-in', async () => {
  const { store, accounts } = setup();
  await accounts.create('alice', PASSWORD);
  const salt = randomBytes(16);
  const old = `scrypt$ln=15,r=8,p=1$${salt.toString('base64url')}$${scryptSync(PASSWORD, salt, 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }).toString('base64url')}`;
  store.records.get('alice')!.passwordHash = old;
  assert.equal(await accounts.authenticate('alice', 'wrong password'), undefined);
  assert.equal(store.records.get('alice')!.passwordHash, old, 'a failed sign-in changes nothing');
  assert.ok(await accounts.authenticate('alice', PASSWORD));
  const upgraded = store.records.get('alice')!.passwordHash;
  assert.match(upgraded, /^scrypt\$ln=17,r=8,p=1\$/);
  assert.equal(await verifyPassword(PASSWORD, upgraded), true);
});

test('a duplicate username is refused, whatever its case', async () => {
  const { accounts } = setup();
  await accounts.create('alice', PASSWORD);
  await assert.rejects(accounts.create('alice', PASSWORD), AccountExistsError);
  await assert.rejects(accounts.create('ALICE', 'another password'), (err: unknown) => {
    assert.ok(err instanceof AccountExistsError);
    assert.equal(err.message, 'an account named "alice" already exists');
    return true;
  });
});

test('bad inputs are refused with a message naming the field and the rule', async () => {
  const { store, accounts } = setup();
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['empty username', () => accounts.create('', PASSWORD), /^username: must be 1 to 64 characters/],
    ['space in username', () => accounts.create('alice smith', PASSWORD), /^username: must be 1 to 64 characters: letters, digits/],
    ['65-character username', () => accounts.create('a'.repeat(65), PASSWORD), /^username: /],
    ['non-ASCII username', () => accounts.create('zoë', PASSWORD), /^username: /],
    ['short password', () => accounts.create('alice', 'short'), /^password: must be at least 8 characters$/],
    ['7 emoji', () => accounts.create('alice', '🔑'.repeat(7)), /^password: must be at least 8 characters$/],
    ['long password', () => accounts.create('alice', 'x'.repeat(1025)), /^password: must be at most 1024 characters$/],
    ['uppercase role', () => accounts.create('alice', PASSWORD, ['Admin']), /^roles: a role is a lowercase letter/],
    ['role with space', () => accounts.create('alice', PASSWORD, ['site admin']), /^roles: /],
    ['role starting with a digit', () => accounts.create('alice', PASSWORD, ['1admin']), /^roles: /],
    ['33-character role', () => accounts.create('alice', PASSWORD, ['a'.repeat(33)]), /^roles: /],
    ['too many roles', () => accounts.create('alice', PASSWORD, Array.from({ length: 33 }, (_, i) => `r${i}`)), /^roles: at most 32 roles$/],
  ];
  for (const [name, run, message] of cases) {
    await assert.rejects(run, (err: unknown) => {
      assert.ok(err instanceof AccountInputError, `${name}: ${String(err)}`);
      assert.match(err.message, message, name);
      return true;
    });
  }
  assert.equal(store.records.size, 0, 'nothing was stored');
  // the limits themselves are fine
  await accounts.create('a'.repeat(64), 'x'.repeat(1024), ['a'.repeat(32)]);
  await accounts.create('emoji', '🔑'.repeat(8));
  assert.ok(await accounts.authenticate('emoji', '🔑'.repeat(8)));
});

test('setPassword replaces the password; unknown users are reported', async () => {
  const { accounts } = setup();
  await accounts.create('alice', PASSWORD);
  await accounts.setPassword('Alice', 'a brand new password');
  assert.equal(await accounts.authenticate('alice', PASSWORD), undefined);
  assert.ok(await accounts.authenticate('alice', 'a brand new password'));
  await assert.rejects(accounts.setPassword('alice', 'short'), /^AccountInputError: password: must be at least 8/);
  await assert.rejects(accounts.setPassword('bob', 'a brand new password'), (err: unknown) => {
    assert.ok(err instanceof AccountNotFoundError);
    assert.equal(err.message, 'no account named "bob"');
    return true;
  });
});

test('setRoles replaces the roles', async () => {
  const { accounts } = setup();
  await accounts.create('alice', PASSWORD, ['admin']);
  await accounts.setRoles('alice', ['editor', 'viewer']);
  assert.deepEqual((await accounts.findByUsername('alice'))?.roles, ['editor', 'viewer']);
  await accounts.setRoles('alice', []);
  assert.deepEqual((await accounts.findByUsername('alice'))?.roles, []);
  await assert.rejects(accounts.setRoles('alice', ['Bad']), AccountInputError);
  await assert.rejects(accounts.setRoles('bob', ['admin']), AccountNotFoundError);
});

test('remove deletes the account; unknown users are reported', async () => {
  const { accounts } = setup();
  await accounts.create('alice', PASSWORD);
  await accounts.remove('ALICE');
  assert.equal(await accounts.authenticate('alice', PASSWORD), undefined);
  assert.deepEqual(await accounts.list(), []);
  await assert.rejects(accounts.remove('alice'), AccountNotFoundError);
  await assert.rejects(accounts.remove('bad name'), AccountInputError);
});

test('list and findById', async () => {
  const { accounts } = setup();
  const carol = await accounts.create('carol', PASSWORD);
  const alice = await accounts.create('alice', PASSWORD);
  assert.deepEqual(
    (await accounts.list()).map((a) => a.username),
    ['alice', 'carol'],
  );
  assert.deepEqual(await accounts.findById(alice.id), alice);
  assert.deepEqual(await accounts.findById(carol.id), carol);
  assert.equal(await accounts.findById('alice'), undefined, 'a username is not an id');
  assert.equal(await accounts.findById(''), undefined);
  assert.equal(await accounts.findByUsername('no such'), undefined);
});
