/**
 * The server's Prometheus metrics (prom-client), served by the admin listener's `/metrics`
 * (src/admin/listener.ts). One registry per server, so two servers in one process (tests)
 * never share counters; the process metrics (CPU, memory, event loop delay and lag, GC,
 * handles) come with it.
 *
 * Labels are bounded: endpoints are named from a fixed list (src/observability/endpoints.ts),
 * OAuth error codes and grant types are checked against a pattern, and client ids — the one
 * label that grows with use — stop being added after {@link MAX_CLIENT_LABELS} distinct ones
 * (later clients are counted as `other`). Nothing here ever holds a token, code or secret: the
 * metrics are fed identifiers from audit events (which hold none, src/audit/events.ts) and
 * from the request's method, endpoint name and status.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditEvent, AuditLog } from '../audit/events.js';
import { KeyedCounter, KeyedHistogram } from './keyed-metrics.js';

export const METRICS_PREFIX = 'mcp_authz_';
/** Distinct client ids given a label of their own; later ones are counted as `other`. */
export const MAX_CLIENT_LABELS = 500;

const LABEL_VALUE = /^[A-Za-z][A-Za-z0-9_:.-]{0,63}$/;
const bounded = (value: unknown): string => (typeof value === 'string' && LABEL_VALUE.test(value) ? value : 'other');

/** What the server's parts report; read when Prometheus scrapes (gauges) or counted as it happens. */
export interface MetricsSources {
  /** audit records accepted and not yet written, and how long the oldest has waited */
  auditBacklog?: () => { pending: number; oldestMs: number };
  /** open revocation feed streams of this process */
  feedSubscribers?: () => number;
  /** 1 when /readyz would answer 200 */
  ready?: () => boolean;
}

export class ServerMetrics {
  readonly registry = new Registry();
  // updated on every request or token: keyed (./keyed-metrics.ts)
  readonly #requests: KeyedCounter;
  readonly #duration: KeyedHistogram;
  readonly #errors: KeyedCounter;
  readonly #tokens: KeyedCounter;
  readonly #storeDuration: KeyedHistogram;
  readonly #refreshReuse: Counter<'outcome'>;
  readonly #consent: Counter<'decision'>;
  readonly #logins: Counter<'outcome'>;
  readonly #rateLimited: Counter<'limit'>;
  readonly #revocations: Counter<'event'>;
  readonly #feedEvents: Counter;
  readonly #clients = new Set<string>();
  #sources: MetricsSources = {};

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: METRICS_PREFIX, eventLoopMonitoringPrecision: 10 });
    this.#requests = new KeyedCounter(`${METRICS_PREFIX}http_requests_total`, 'HTTP requests answered, by endpoint, method and status.', this.registry);
    this.#duration = new KeyedHistogram(
      `${METRICS_PREFIX}http_request_duration_seconds`,
      'Time from a request to its answer, by endpoint, method and status.',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      this.registry,
    );
    this.#errors = new KeyedCounter(
      `${METRICS_PREFIX}errors_total`,
      'Error answers (status 400 and above), by endpoint and OAuth error code (`server_error` for a 5xx without one).',
      this.registry,
    );
    this.#tokens = new KeyedCounter(
      `${METRICS_PREFIX}tokens_issued_total`,
      `Access tokens issued, by grant type and client id (the first ${MAX_CLIENT_LABELS} distinct clients; later ones as "other").`,
      this.registry,
    );
    this.#storeDuration = new KeyedHistogram(
      `${METRICS_PREFIX}store_operation_duration_seconds`,
      'Time the store (SQLite or Redis) took per operation, by operation and outcome.',
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      this.registry,
    );
    this.#refreshReuse = new Counter({
      name: `${METRICS_PREFIX}refresh_token_reuse_total`,
      help: 'Rotated refresh tokens presented again: `replayed` within the grace window (same answer), `revoked` after it (the grant is revoked).',
      labelNames: ['outcome'],
      registers,
    });
    this.#consent = new Counter({
      name: `${METRICS_PREFIX}consent_decisions_total`,
      help: 'Consent decisions by people: granted (all or part of what was asked) or refused.',
      labelNames: ['decision'],
      registers,
    });
    this.#logins = new Counter({
      name: `${METRICS_PREFIX}logins_total`,
      help: 'Sign-in attempts, by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    this.#rateLimited = new Counter({
      name: `${METRICS_PREFIX}rate_limit_hits_total`,
      help: 'Requests refused by a rate limit, by limit.',
      labelNames: ['limit'],
      registers,
    });
    this.#revocations = new Counter({
      name: `${METRICS_PREFIX}revocations_total`,
      help: 'Revocations made through this process: `token.revoked` (RFC 7009 or sign-out) and `grant.revoked` (a person, an operator, or refresh token reuse).',
      labelNames: ['event'],
      registers,
    });
    this.#feedEvents = new Counter({
      name: `${METRICS_PREFIX}revocation_feed_events_total`,
      help: 'Revocation log entries this process read and sent to its feed subscribers (each entry once, whatever the number of subscribers).',
      registers,
    });
    const sources = () => this.#sources;
    new Gauge({
      name: `${METRICS_PREFIX}revocation_feed_subscribers`,
      help: 'Open revocation feed streams (verifiers following this process).',
      registers,
      collect() {
        this.set(sources().feedSubscribers?.() ?? 0);
      },
    });
    new Gauge({
      name: `${METRICS_PREFIX}audit_pending_records`,
      help: 'Audit records accepted and not yet written to the sink.',
      registers,
      collect() {
        this.set(sources().auditBacklog?.().pending ?? 0);
      },
    });
    new Gauge({
      name: `${METRICS_PREFIX}audit_sink_lag_seconds`,
      help: 'How long the oldest audit record not yet written has waited (0 when none waits).',
      registers,
      collect() {
        this.set((sources().auditBacklog?.().oldestMs ?? 0) / 1000);
      },
    });
    new Gauge({
      name: `${METRICS_PREFIX}ready`,
      help: '1 when the server is ready (store reachable, signing keys loaded, not draining), else 0; as /readyz last found it.',
      registers,
      collect() {
        this.set(sources().ready?.() ? 1 : 0);
      },
    });
  }

  /** Connects the gauges read at scrape time. */
  attach(sources: MetricsSources): void {
    this.#sources = { ...this.#sources, ...sources };
  }

  /** One answered request. `error` is the OAuth error code of a JSON error answer, when there is one. */
  request(endpoint: string, method: string, status: number, seconds: number, error?: unknown): void {
    const verb = METHODS.has(method) ? method : 'other';
    const key = `${endpoint} ${verb} ${status}`;
    const labels = () => ({ endpoint, method: verb, status: String(status) });
    this.#requests.inc(key, labels);
    this.#duration.observe(key, labels, seconds);
    if (status >= 400) {
      const code = error !== undefined ? bounded(error) : status >= 500 ? 'server_error' : String(status);
      this.#errors.inc(`${endpoint} ${code}`, () => ({ endpoint, error: code }));
    }
  }

  /** Counts what an audit event says happened (tokens, consent, sign-in, reuse, limits, revocations). */
  auditEvent(event: AuditEvent): void {
    switch (event.event) {
      case 'token.issued':
      case 'token.refreshed':
        this.#tokenIssued(bounded(event.details?.grantType), this.#clientLabel(event.client));
        break;
      case 'consent.granted':
        this.#consent.inc({ decision: 'granted' });
        break;
      case 'consent.refused':
        this.#consent.inc({ decision: 'refused' });
        break;
      case 'login.succeeded':
        this.#logins.inc({ outcome: 'success' });
        break;
      case 'login.failed':
        this.#logins.inc({ outcome: 'failure' });
        break;
      case 'refresh_token.reuse_detected':
        this.#refreshReuse.inc({ outcome: 'revoked' });
        break;
      case 'rate_limit.hit':
        this.#rateLimited.inc({ limit: bounded(event.details?.limit) });
        break;
      case 'token.revoked':
      case 'grant.revoked':
      case 'admin.grant_revoked':
        if (event.outcome === 'success') this.#revocations.inc({ event: event.event });
        break;
      default:
        break;
    }
  }

  /** A rotated refresh token presented again within the grace window got the same answer. */
  refreshReplayed(): void {
    this.#refreshReuse.inc({ outcome: 'replayed' });
  }

  feedEvents(count: number): void {
    this.#feedEvents.inc(count);
  }

  /** `operation` is one of the store's method names (a fixed set), so it keys its series as it is. */
  store(operation: string, seconds: number, ok: boolean): void {
    if (ok) this.#storeDuration.observe(operation, () => ({ operation, outcome: 'success' }), seconds);
    else this.#storeDuration.observe(`${operation} failure`, () => ({ operation, outcome: 'failure' }), seconds);
  }

  /** The Prometheus text exposition. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #tokenIssued(grantType: string, client: string): void {
    this.#tokens.inc(`${grantType} ${client}`, () => ({ grant_type: grantType, client }));
  }

  #clientLabel(client: string | undefined): string {
    if (!client) return 'none';
    const id = client.slice(0, 256);
    if (this.#clients.has(id)) return id;
    if (this.#clients.size >= MAX_CLIENT_LABELS) return 'other';
    this.#clients.add(id);
    return id;
  }
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The audit log, counting each event in `metrics` as it is recorded. */
export function countedAuditLog<T extends AuditLog>(audit: T, metrics: ServerMetrics): T {
  const record = audit.record.bind(audit);
  return Object.assign(Object.create(audit) as T, {
    record(event: AuditEvent) {
      metrics.auditEvent(event);
      record(event);
    },
  });
}
