/**
 * Errors of the account service, each with a message fit to show as is (CLI, logs).
 * `AccountExistsError` comes from the store contract: stores throw it on a taken name.
 */
export { AccountExistsError } from '../../adapters/contract.js';

/** An input (username, password, roles) broke a rule; `field` names which. */
export class AccountInputError extends Error {
  override readonly name = 'AccountInputError';
  constructor(
    readonly field: 'username' | 'password' | 'roles',
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

export class AccountNotFoundError extends Error {
  override readonly name = 'AccountNotFoundError';
  constructor(readonly username: string) {
    super(`no account named "${username}"`);
  }
}
