/**
 * The first account, from the one-time set-up link (src/demo/setup-link.ts):
 *
 *   GET  /setup?token=…   → the form (a readable 410 page when the link is used, old or unknown)
 *   POST /setup           → makes the account (role `admin`), uses the link up, and goes on to the demo host
 *
 * The token travels in the query (the request log has paths only) and in the form; the form
 * carries a CSRF token too. Checking the link costs nothing (a hash compare) and the token is
 * 256 random bits, so there is nothing to guess.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AccountService } from '../accounts/service.js';
import { passwordSchema, usernameSchema } from '../accounts/schema.js';
import { AccountExistsError, AccountInputError } from '../accounts/errors.js';
import type { AuditLog } from '../audit/events.js';
import { requestFacts } from '../audit/request-facts.js';
import type { Csrf } from '../http/csrf.js';
import { readForm } from '../http/form-body.js';
import { PageError } from '../http/page-error.js';
import type { Render, SetupPage } from '../http/render.js';
import type { Logger } from '../observability/logger.js';
import type { SetupLink } from './setup-link.js';

export const SETUP_PATH = '/setup';

/** The role of the account made here: whoever sets up the server runs it. */
const FIRST_ROLES = ['admin'];

export interface SetupDeps {
  accounts: AccountService;
  link: SetupLink;
  csrf: Csrf;
  render: Render;
  audit: AuditLog;
  log: Logger;
  basePath: string;
  /** where a new account goes next */
  next: string;
}

const setupForm = z.object({
  csrf: z.string().max(200),
  token: z.string().max(200),
  username: z.string().max(200),
  password: z.string().max(4096),
  confirm: z.string().max(4096),
});

export function setupRouter(deps: SetupDeps): Router {
  const { accounts, link, csrf, audit, log, basePath } = deps;
  const path = `${basePath}${SETUP_PATH}`;
  const router = new Router();
  const render = (ctx: Context, page: SetupPage, status = 200) => deps.render(ctx, 'setup', page, status);

  /** The page for a link that no longer works: why, and what to do instead. */
  const invalid = (ctx: Context, accountsExist: boolean) =>
    render(ctx, { title: 'This set-up link does not work', state: 'invalid', accountsExist }, 410);

  const form = (ctx: Context, token: string, extra: { username?: string; error?: string } = {}, status = 200) =>
    render(ctx, { title: 'Create your account', state: 'form', action: path, csrf: csrf.issue(ctx, 'setup'), token, ...extra }, status);

  /** True when an account exists, which ends the link for good. */
  async function accountsExist(): Promise<boolean> {
    if ((await accounts.list()).length === 0) return false;
    link.end();
    return true;
  }

  router.get(path, async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const exist = await accountsExist();
    if (exist || !link.matches(token)) return invalid(ctx, exist);
    form(ctx, token);
  });

  router.post(path, async (ctx) => {
    const raw = await readForm(ctx);
    if (!csrf.verify(ctx, 'setup', raw.csrf)) {
      throw new PageError(403, 'Request blocked', 'This form has expired or did not come from this site. Open the set-up link again.');
    }
    const parsed = setupForm.safeParse(raw);
    if (!parsed.success) throw new PageError(400, 'Invalid request', 'The form was incomplete or malformed. Open the set-up link again.');
    const { token, username, password, confirm } = parsed.data;
    const exist = await accountsExist();
    if (exist || !link.matches(token)) return invalid(ctx, exist);

    const name = usernameSchema.safeParse(username);
    const secret = passwordSchema.safeParse(password);
    const problem = !name.success
      ? `The username ${name.error.issues[0]!.message}.`
      : !secret.success
        ? `The password ${secret.error.issues[0]!.message}.`
        : password !== confirm
          ? 'The two passwords differ.'
          : undefined;
    if (problem) return form(ctx, token, { username, error: problem }, 422);

    // one request takes the link; a second one at the same moment finds it gone
    if (!link.take(token)) return invalid(ctx, await accountsExist());
    let account;
    try {
      account = await accounts.create(username, password, FIRST_ROLES);
    } catch (err) {
      link.restore(token);
      if (!(err instanceof AccountInputError || err instanceof AccountExistsError)) throw err;
      return form(ctx, token, { username, error: 'That account cannot be created. Choose another username.' }, 422);
    }
    link.end();
    log.info({ event: 'setup.account_created', accountId: account.id }, 'the first account was created from the set-up link');
    audit.record({
      event: 'admin.user_added',
      outcome: 'success',
      actor: 'setup-link',
      ...requestFacts(ctx),
      details: { username: account.username, accountId: account.id, roles: account.roles },
    });
    ctx.status = 303;
    ctx.redirect(`${deps.next}?notice=account-created`);
  });

  return router;
}
