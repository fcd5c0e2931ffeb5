/**
 * The current time as an ISO 8601 string (`2026-12-05T07:05:47.930Z`), made once per millisecond:
 * under load a request's log line and its audit record, and those of its neighbours, are stamped
 * in the same millisecond, and formatting a date is most of what stamping costs.
 */
let lastMs = Number.NaN;
let lastIso = '';

export function isoNow(now: number = Date.now()): string {
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}
