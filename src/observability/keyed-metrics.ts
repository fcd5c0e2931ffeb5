/**
 * A counter and a histogram for the per-request path, registered in a prom-client registry and
 * exposed by it like its own, but cheaper to update: the caller names a series by a string key
 * it builds anyway, so an update is one Map lookup and an add — no label object to build,
 * validate and hash (prom-client's `inc`/`observe` do all three on every call, which a CPU
 * profile of token issuance showed at about 2 % of the server's time). Label objects are built
 * once per series, on its first update. Buckets are summed into the cumulative `le` series only
 * when Prometheus scrapes.
 */
import type { Metric, Registry } from 'prom-client';

type Labels = Record<string, string>;

interface Exported {
  labels: Labels;
  value: number;
  metricName?: string;
}

abstract class KeyedMetric<Series> {
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';
  protected readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  protected abstract exported(): Exported[];

  /** What prom-client's registry formats (the shape of its own metrics' `get()`). */
  get(): { name: string; help: string; type: string; aggregator: string; values: Exported[] } {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.exported() };
  }

  reset(): void {
    this.series.clear();
  }
}

export class KeyedCounter extends KeyedMetric<{ labels: Labels; value: number }> {
  readonly type = 'counter';

  /** Adds `by` to the series `key`; `labels()` is called only when the series is new. */
  inc(key: string, labels: () => Labels, by = 1): void {
    let series = this.series.get(key);
    if (!series) {
      series = { labels: labels(), value: 0 };
      this.series.set(key, series);
    }
    series.value += by;
  }

  protected exported(): Exported[] {
    return [...this.series.values()].map(({ labels, value }) => ({ labels, value }));
  }
}

export class KeyedHistogram extends KeyedMetric<{ labels: Labels; counts: Float64Array; sum: number; count: number }> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, registry);
  }

  /** Records `value` in the series `key`; `labels()` is called only when the series is new. */
  observe(key: string, labels: () => Labels, value: number): void {
    let series = this.series.get(key);
    if (!series) {
      series = { labels: labels(), counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    const { buckets } = this;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]!) {
        series.counts[i]!++;
        break;
      }
    }
    series.sum += value;
    series.count++;
  }

  protected exported(): Exported[] {
    const values: Exported[] = [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += counts[i]!;
        values.push({ labels: { ...labels, le: String(bound) }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: count, metricName: `${this.name}_count` });
    }
    return values;
  }
}
