import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * Hot-path series: a plain number (or bucket array) per label set, added up
 * in the event loop's own work and handed to prom-client only at scrape
 * time. prom-client's own inc() and observe() validate and hash the labels
 * on every call (~1–2 µs each here), several times a task on the server and
 * worker; these cost tens of nanoseconds.
 */

export interface FastCounter {
  inc(n?: number): void;
}

/** A prom-client counter whose series are incremented in memory and flushed at each scrape. */
export function fastCounter<L extends string>(
  registry: Registry,
  config: { name: string; help: string; labelNames: readonly L[] },
): (labels: Readonly<Record<L, string>>) => FastCounter {
  const pending = new Map<string, { labels: Record<L, string>; n: number }>();
  new Counter<L>({
    ...config,
    labelNames: [...config.labelNames],
    registers: [registry],
    collect() {
      for (const series of pending.values()) {
        this.inc(series.labels, series.n);
        series.n = 0;
      }
    },
  });
  return (labels) => {
    const key = config.labelNames.map((name) => labels[name]).join('\n');
    let series = pending.get(key);
    if (series === undefined) pending.set(key, (series = { labels: { ...labels }, n: 0 }));
    const s = series;
    return {
      inc(n = 1) {
        s.n += n;
      },
    };
  };
}

export interface FastHistogram {
  observe(value: number): void;
}

interface HistogramSeries<L extends string> {
  readonly labels: Record<L, string>;
  /** Observations per bucket (not cumulative); the last is +Inf. */
  readonly counts: number[];
  sum: number;
  count: number;
}

/** A histogram in the Prometheus format, registered in `registry`, with series observed in memory. */
export function fastHistogram<L extends string>(
  registry: Registry,
  config: { name: string; help: string; labelNames: readonly L[]; buckets: readonly number[] },
): (labels: Readonly<Record<L, string>>) => FastHistogram {
  const bounds = [...config.buckets].sort((a, b) => a - b);
  const series = new Map<string, HistogramSeries<L>>();
  const metric = {
    name: config.name,
    help: config.help,
    type: 'histogram',
    aggregator: 'sum',
    labelNames: [...config.labelNames],
    get() {
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      for (const s of series.values()) {
        let cumulative = 0;
        bounds.forEach((bound, i) => {
          cumulative += s.counts[i]!;
          values.push({ metricName: `${config.name}_bucket`, labels: { ...s.labels, le: bound }, value: cumulative });
        });
        values.push({ metricName: `${config.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
        values.push({ metricName: `${config.name}_sum`, labels: { ...s.labels }, value: s.sum });
        values.push({ metricName: `${config.name}_count`, labels: { ...s.labels }, value: s.count });
      }
      return { name: config.name, help: config.help, type: 'histogram', aggregator: 'sum', values };
    },
    reset() {
      series.clear();
    },
  };
  registry.registerMetric(metric as unknown as Histogram);
  return (labels) => {
    const key = config.labelNames.map((name) => labels[name]).join('\n');
    let found = series.get(key);
    if (found === undefined) {
      found = { labels: { ...labels }, counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 };
      series.set(key, found);
    }
    const s = found;
    return {
      observe(value) {
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        s.counts[i]!++;
        s.sum += value;
        s.count++;
      },
    };
  };
}
