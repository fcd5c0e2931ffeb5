/**
 * The verifier's side of `POST /tool-approvals` (contract of issue #15): the MCP server, as one
 * of its resource's `resourceServerClients` (HTTP Basic), asks the authorization server whether
 * a person approved this exact call. Answers are read strictly; anything else is the
 * authorization server being unavailable.
 */
import { z } from 'zod';
import type { FetchLike } from './types.js';

const TIMEOUT_MS = 5000;

const ApprovalAnswerSchema = z.discriminatedUnion('status', [
  z.looseObject({ status: z.literal('approved'), approval_id: z.string().min(1), approval_token: z.string().min(1), expires_in: z.number().optional() }),
  z.looseObject({
    status: z.literal('pending'),
    approval_id: z.string().min(1),
    approval_url: z.url(),
    account_url: z.url(),
    expires_in: z.number(),
    interval: z.number(),
  }),
  z.looseObject({ status: z.literal('denied'), approval_id: z.string().min(1) }),
  z.looseObject({ status: z.literal('expired'), approval_id: z.string().min(1) }),
  z.looseObject({ status: z.literal('unavailable'), error_description: z.string().optional() }),
]);

/** One answer of the authorization server's `/tool-approvals`. */
export type ApprovalAnswer = z.infer<typeof ApprovalAnswerSchema>;

/** What the verifier sends (the contract's request body). */
export interface ApprovalRequest {
  /** the access token the MCP call carried */
  token: string;
  tool: string;
  arguments_digest: string;
  /** what the person is shown; sensitive values already taken out */
  summary: string;
  /** the context id the MCP client echoed, if any */
  approval_id?: string;
}

/**
 * Why no usable answer came: `unreachable` (network, timeout, 5xx, unreadable answer),
 * `credentials` (401: this MCP server's `resourceServer` credentials are wrong),
 * `not-acting` (403: the credentials do not act as this token's resource), `token` (400
 * `invalid_token`: the access token is no longer active at the AS), `request` (400 otherwise).
 */
export type ApprovalFailure = 'unreachable' | 'credentials' | 'not-acting' | 'token' | 'request';

export class ApprovalRequestError extends Error {
  override readonly name = 'ApprovalRequestError';
  constructor(
    readonly reason: ApprovalFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** `application/x-www-form-urlencoded` encoding of a client credential (RFC 6749 §2.3.1). */
const formEncode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');

export interface ApprovalClientOptions {
  clientId: string;
  clientSecret: string;
  /** the endpoint (resolved on each call: discovery may supply it) */
  endpoint: () => Promise<string>;
  fetch: FetchLike;
}

export class ApprovalClient {
  readonly #options: ApprovalClientOptions;
  readonly #authorization: string;

  constructor(options: ApprovalClientOptions) {
    this.#options = options;
    this.#authorization = `Basic ${btoa(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`)}`;
  }

  /** The authorization server's answer; rejects with {@link ApprovalRequestError}. */
  async request(body: ApprovalRequest): Promise<ApprovalAnswer> {
    let endpoint: string;
    try {
      endpoint = await this.#options.endpoint();
    } catch (cause) {
      throw new ApprovalRequestError('unreachable', 'the tool approval endpoint is unknown', { cause });
    }
    let response: Response;
    try {
      response = await this.#options.fetch(endpoint, {
        method: 'POST',
        headers: { authorization: this.#authorization, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        redirect: 'manual',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (cause) {
      throw new ApprovalRequestError('unreachable', `the tool approval endpoint ${endpoint} is unreachable`, { cause });
    }
    const answer = (await response.json().catch(() => undefined)) as { error?: unknown; error_description?: unknown } | undefined;
    const said = typeof answer?.error === 'string' ? ` (${answer.error}${typeof answer.error_description === 'string' ? `: ${answer.error_description}` : ''})` : '';
    if (response.status === 401) {
      throw new ApprovalRequestError('credentials', `the tool approval endpoint refused this MCP server's credentials (resourceServer.clientId / clientSecret)${said}`);
    }
    if (response.status === 403) {
      throw new ApprovalRequestError('not-acting', `the authorization server says this MCP server's client does not act for the token's resource${said}`);
    }
    if (response.status === 400) {
      if (answer?.error === 'invalid_token') throw new ApprovalRequestError('token', `the authorization server reports the access token inactive${said}`);
      throw new ApprovalRequestError('request', `the tool approval endpoint refused the request${said}`);
    }
    if (response.status !== 200) throw new ApprovalRequestError('unreachable', `the tool approval endpoint answered HTTP ${response.status}${said}`);
    const parsed = ApprovalAnswerSchema.safeParse(answer);
    if (!parsed.success) throw new ApprovalRequestError('unreachable', `the tool approval endpoint sent an answer it could not read: ${parsed.error.message}`);
    return parsed.data;
  }
}
