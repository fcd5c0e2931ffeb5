/**
 * An error meant for a person: a status, a title and a message safe to show as it is.
 * Anything else that reaches the error boundary is logged and shown as a generic page.
 */
export class PageError extends Error {
  override readonly name = 'PageError';
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
  ) {
    super(message);
  }
}
