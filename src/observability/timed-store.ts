/**
 * The store, with every operation timed into `mcp_authz_store_operation_duration_seconds`
 * (labelled `grants.get`, `model.AccessToken.upsert`, …). The parts are wrapped as they are:
 * methods run on the real objects (their private fields intact), and what they return is
 * passed through untouched. The revocation log's blocking read (`readAfter` with a wait) is
 * not timed: it waits for news, not for the store.
 */
import type { ModelAdapter, Store } from '../../adapters/contract.js';
import type { ServerMetrics } from './metrics.js';

const PARTS = ['accounts', 'settings', 'revocations', 'clients', 'rotations', 'grants', 'limits', 'toolApprovals'] as const;

export function timedStore(store: Store, metrics: ServerMetrics): Store {
  const parts = Object.fromEntries(PARTS.map((name) => [name, timed(store[name], name, metrics)]));
  const models = new Map<string, ModelAdapter>();
  return Object.assign(Object.create(null) as object, {
    kind: store.kind,
    ...parts,
    model(name: string): ModelAdapter {
      let adapter = models.get(name);
      if (!adapter) {
        adapter = timed(store.model(name), `model.${name}`, metrics);
        models.set(name, adapter);
      }
      return adapter;
    },
    ping: () => measure(metrics, 'ping', () => store.ping()),
    close: () => store.close(),
  }) as Store;
}

function timed<T extends object>(part: T, prefix: string, metrics: ServerMetrics): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(part, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function' || typeof property !== 'string' || property === 'constructor') return value;
      let fn = wrapped.get(property);
      if (!fn) {
        const operation = `${prefix}.${property}`;
        const blocking = prefix === 'revocations' && property === 'readAfter';
        fn = (...args: unknown[]) =>
          blocking && args[2] !== undefined
            ? (value as (...a: unknown[]) => unknown).apply(target, args)
            : measure(metrics, operation, () => (value as (...a: unknown[]) => unknown).apply(target, args));
        wrapped.set(property, fn);
      }
      return fn;
    },
  });
}

function measure<R>(metrics: ServerMetrics, operation: string, run: () => R): R {
  const started = performance.now();
  let result: R;
  try {
    result = run();
  } catch (err) {
    metrics.store(operation, (performance.now() - started) / 1000, false);
    throw err;
  }
  if (!(result instanceof Promise)) {
    metrics.store(operation, (performance.now() - started) / 1000, true);
    return result;
  }
  return result.then(
    (value: unknown) => {
      metrics.store(operation, (performance.now() - started) / 1000, true);
      return value;
    },
    (err: unknown) => {
      metrics.store(operation, (performance.now() - started) / 1000, false);
      throw err;
    },
  ) as R;
}
