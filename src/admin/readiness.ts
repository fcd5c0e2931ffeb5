/**
 * Whether this process should receive traffic (`/readyz` on the admin listener): the store
 * answers, signing keys are loaded, and the process is not draining for a shutdown. A failed
 * check says which, never why in detail (the reason goes to the log, once per change).
 */
import type { Store } from '../../adapters/contract.js';
import type { Logger } from '../observability/logger.js';

export interface ReadinessReport {
  ready: boolean;
  checks: { store: 'ok' | 'unreachable'; keys: 'ok' | 'missing'; draining: boolean };
}

export class Readiness {
  #draining = false;
  #last: ReadinessReport | undefined;

  constructor(
    private readonly store: Store,
    private readonly keysLoaded: () => boolean,
    private readonly log: Logger,
  ) {}

  get draining(): boolean {
    return this.#draining;
  }

  /** From now on the process is not ready, whatever the checks say: it is shutting down. */
  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.log.info({ event: 'readiness.draining' }, 'draining: /readyz answers 503 from now on');
  }

  /** As the last check found it (false before the first). */
  get ready(): boolean {
    return !this.#draining && (this.#last?.ready ?? false);
  }

  async check(): Promise<ReadinessReport> {
    let store: ReadinessReport['checks']['store'] = 'ok';
    try {
      await this.store.ping();
    } catch (err) {
      store = 'unreachable';
      if (this.#last?.checks.store !== 'unreachable') {
        this.log.warn({ event: 'readiness.store_unreachable', err: { message: (err as Error).message } }, 'not ready: the store does not answer');
      }
    }
    const keys = this.keysLoaded() ? 'ok' : 'missing';
    const report: ReadinessReport = { ready: store === 'ok' && keys === 'ok' && !this.#draining, checks: { store, keys, draining: this.#draining } };
    if (this.#last?.checks.store === 'unreachable' && store === 'ok') this.log.info({ event: 'readiness.store_back' }, 'the store answers again');
    this.#last = report;
    return report;
  }
}
