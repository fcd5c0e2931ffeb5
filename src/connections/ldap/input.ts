/**
 * What a person types into a directory's sign-in form, checked before anything is sent: a
 * username of 1 to 256 characters, well-formed Unicode, no control characters and not
 * blank; a password that is not empty (an empty one would be an "unauthenticated bind",
 * which many directories accept without checking anything).
 */

export const MAX_USERNAME = 256;
export const MAX_PASSWORD = 1024;

export function acceptableUsername(username: unknown): username is string {
  return (
    typeof username === 'string' &&
    username.length > 0 &&
    username.length <= MAX_USERNAME &&
    username.trim() !== '' &&
    // control characters, and lone surrogates (not well-formed Unicode)
    !/[\p{Cc}\p{Cs}]/u.test(username)
  );
}

export function acceptablePassword(password: unknown): password is string {
  return typeof password === 'string' && password.length > 0 && password.length <= MAX_PASSWORD;
}
