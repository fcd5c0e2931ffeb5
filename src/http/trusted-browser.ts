/**
 * Browsers that have signed in to an account before (OWASP's "device cookie" against
 * account lockout): after a successful sign-in the browser gets a signed, httpOnly cookie with
 * a random browser id and the ids of the (at most {@link MAX_ACCOUNTS}) accounts signed in from
 * it. The sign-in limits (src/http/limits.ts) count such a browser's failures for one of its
 * accounts per browser instead of per source address, and let it through the account's
 * ceiling: a guessing attack spread over many addresses can hold up new browsers for at most
 * the ceiling's window, never the person's own browser.
 *
 * The cookie proves only that this browser once knew the account's password; it never signs
 * anyone in. Its value is signed with the server's cookie keys (koa `signed` cookies), so it
 * cannot be made up; anything unreadable is ignored.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { z } from 'zod';

/** How many accounts one browser remembers (the most recent ones). */
export const MAX_ACCOUNTS = 5;
/** How long a browser stays trusted after its last sign-in. */
export const TRUSTED_BROWSER_TTL_MS = 180 * 86400_000;

const cookieSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  accounts: z.array(z.string().min(1).max(128)).max(MAX_ACCOUNTS),
});

export type TrustedBrowser = z.infer<typeof cookieSchema>;

export interface TrustedBrowsers {
  /** The browser's id and accounts, when it carries a valid cookie. */
  read(ctx: Context): TrustedBrowser | undefined;
  /** After `accountId` signed in from this browser: remember it (most recent first). */
  remember(ctx: Context, accountId: string): void;
}

export function trustedBrowsers({ secureCookies, path }: { secureCookies: boolean; path: string }): TrustedBrowsers {
  // __Host- cookies must be Secure and for path /: use it on https at the origin only
  const name = secureCookies && path === '/' ? '__Host-mcp-authz.browser' : 'mcp-authz.browser';
  const read = (ctx: Context): TrustedBrowser | undefined => {
    const raw = ctx.cookies.get(name, { signed: true });
    if (!raw) return undefined;
    try {
      const parsed = cookieSchema.safeParse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    read,
    remember(ctx, accountId) {
      const current = read(ctx);
      const value: TrustedBrowser = {
        id: current?.id ?? randomBytes(16).toString('base64url'),
        accounts: [accountId, ...(current?.accounts ?? []).filter((a) => a !== accountId)].slice(0, MAX_ACCOUNTS),
      };
      ctx.cookies.set(name, Buffer.from(JSON.stringify(value), 'utf8').toString('base64url'), {
        signed: true,
        httpOnly: true,
        sameSite: 'lax',
        secure: secureCookies,
        path,
        maxAge: TRUSTED_BROWSER_TTL_MS,
        overwrite: true,
      });
    },
  };
}
