/**
 * Reads secrets (passwords) from standard input, never from argv, where other local users
 * could see them in the process list and shells would keep them in their history.
 *
 * - On a terminal: writes the prompt to stderr and reads with echo off (raw mode),
 *   handling Enter, Backspace, Ctrl-U (clear), Ctrl-C (interrupt) and Ctrl-D (end).
 * - Otherwise (a pipe or file): takes the next line, without its line ending.
 *
 * Input that arrives ahead of time (a pasted "pw⏎pw⏎") is kept for the next read.
 */
import { StringDecoder } from 'node:string_decoder';
import type { CommandIO } from './commands.js';

/** Ctrl-C at a prompt: the command should stop and exit 130, like after SIGINT. */
export class SecretInterruptedError extends Error {
  override readonly name = 'SecretInterruptedError';
  constructor() {
    super('interrupted');
  }
}

/** Standard input ended (or failed) before a secret was read. */
export class SecretInputError extends Error {
  override readonly name = 'SecretInputError';
}

export interface SecretReader {
  /** true when reading from a terminal (prompts shown, echo off) */
  readonly interactive: boolean;
  /** Reads one secret; `prompt` is shown only on a terminal. */
  read(prompt: string): Promise<string>;
  /** Stops reading standard input so the process can exit. Safe to call twice. */
  close(): void;
}

/** More than any password we accept; stops a runaway pipe from filling memory. */
const MAX_INPUT = 64 * 1024;

const ENTER = new Set(['\r', '\n']);
const CTRL_C = '\u0003';
const CTRL_D = '\u0004';
const CTRL_U = '\u0015';
const BACKSPACE = new Set(['\u007f', '\b']);
const ESC = '\u001b';

export function createSecretReader({ stdin, stderr }: Pick<CommandIO, 'stdin' | 'stderr'>): SecretReader {
  const interactive = Boolean(stdin.isTTY && typeof stdin.setRawMode === 'function');
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let listening = false;

  const onData = (chunk: Buffer | string) => {
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    wake?.();
  };
  const onEnd = () => {
    pending += decoder.end();
    ended = true;
    wake?.();
  };
  const onError = (err: Error) => {
    failure = err;
    wake?.();
  };

  function listen(): void {
    if (!listening) {
      stdin.on('data', onData);
      stdin.on('end', onEnd);
      stdin.on('error', onError);
      listening = true;
    }
    stdin.resume();
  }

  /** Resolves on the next chunk, end or error. */
  function more(): Promise<void> {
    if (failure) return Promise.reject(new SecretInputError(`cannot read standard input: ${failure.message}`));
    return new Promise((resolve) => {
      wake = () => {
        wake = undefined;
        resolve();
      };
    });
  }

  async function readLine(): Promise<string> {
    listen();
    for (;;) {
      const newline = pending.indexOf('\n');
      if (newline !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        return line.replace(/\r$/, '');
      }
      if (pending.length > MAX_INPUT) throw new SecretInputError('the line on standard input is too long');
      if (ended) {
        if (pending === '') throw new SecretInputError('no password on standard input');
        const line = pending;
        pending = '';
        return line.replace(/\r$/, '');
      }
      await more();
    }
  }

  async function readHidden(prompt: string): Promise<string> {
    stderr.write(prompt);
    stdin.setRawMode!(true);
    listen();
    let secret: string[] = [];
    try {
      for (;;) {
        while (pending !== '') {
          const ch = String.fromCodePoint(pending.codePointAt(0)!);
          pending = pending.slice(ch.length);
          if (ENTER.has(ch)) {
            // "\r\n" from a terminal that sends both: the "\n" is not the next (empty) answer
            if (ch === '\r' && pending.startsWith('\n')) pending = pending.slice(1);
            return secret.join('');
          }
          if (ch === CTRL_C) throw new SecretInterruptedError();
          if (ch === CTRL_D) {
            if (secret.length === 0) throw new SecretInputError('no password entered');
            continue;
          }
          if (ch === CTRL_U) secret = [];
          else if (BACKSPACE.has(ch)) secret.pop();
          else if (ch === ESC) pending = pending.replace(/^(\[[0-?]*[ -/]*[@-~]|O.)/, ''); // arrow keys etc.
          else if (ch >= ' ') {
            if (secret.length >= MAX_INPUT) throw new SecretInputError('the password is too long');
            secret.push(ch);
          }
        }
        if (ended) throw new SecretInputError('standard input closed');
        await more();
      }
    } finally {
      stdin.setRawMode!(false);
      stderr.write('\n'); // the user's Enter was not echoed
    }
  }

  return {
    interactive,
    read: (prompt) => (interactive ? readHidden(prompt) : readLine()),
    close() {
      if (listening) {
        stdin.removeListener('data', onData);
        stdin.removeListener('end', onEnd);
        stdin.removeListener('error', onError);
        listening = false;
      }
      stdin.pause();
    },
  };
}
