/**
 * How long a test waits for something that must happen promptly. Speed is the benchmarks' business
 * (`bench/revocation` measures an RFC 7009 revocation returning → a verifier in another process
 * refusing, target p99 ≤ 50 ms, see docs/performance.md); a test proves the path, with headroom for a
 * loaded 2-core CI machine.
 *
 * PUSH_BOUND_MS — a revocation pushed on the feed reaching a verifier (or a feed reader). A verifier
 * that hears heartbeats neither reconnects nor replays the feed's backlog before
 * `revocation.staleAfter` (30 s by default; the tests with a shorter one keep a live feed with
 * heartbeats more often than that), and a token it has accepted stays accepted until it expires, so
 * within this bound nothing but the live push can refuse it: the tests still fail when the push is
 * broken, while the bound is a hundred times the benchmark's target.
 */
export const PUSH_BOUND_MS = 5_000;
