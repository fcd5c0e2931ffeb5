/**
 * The application logger (pino, JSON lines on stdout). Anything that could carry a
 * secret is redacted by path, and request logs carry only method, path and status:
 * never a query string, body, cookie or Authorization header.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'password',
  '*.password',
  'secret',
  '*.secret',
  'client_secret',
  '*.client_secret',
  'token',
  '*.token',
  'code',
  '*.code',
  'authorization',
  '*.authorization',
  'cookie',
  '*.cookie',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
  'refresh_token',
  '*.refresh_token',
  'access_token',
  '*.access_token',
  'user_code',
  '*.user_code',
  'device_code',
  '*.device_code',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'mcp-authz' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination as pino.DestinationStream | undefined,
  );
}
