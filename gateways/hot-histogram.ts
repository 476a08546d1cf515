// A Prometheus histogram for the ingest path, registered in a prom-client Registry and exported in the
// same text as prom-client's Histogram. Why not prom-client's: its observe() — a labelled child's too —
// rebuilds the label object, validates it and hashes it on every call (~2 µs each, three per ingest
// request, 3–4 % of the gateway's CPU per request in the fleet's shape). Here a series is found once
// (`child(...)`, kept by the caller) and observing is a bucket search and three additions.
import type { Metric, Registry } from "prom-client";

/** One label set's counts. */
class Series {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Record<string, string>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

export interface HotHistogramOptions {
  name: string;
  help: string;
  labelNames?: readonly string[];
  /** Upper bounds, ascending (the +Inf bucket is implied). */
  buckets: readonly number[];
  registers: readonly Registry[];
}

interface ValuePair {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
}

export class HotHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly labelNames: readonly string[];
  private readonly bounds: readonly number[];
  /** By label values joined with "\u0000" (not a character of a label value we set). */
  private readonly series = new Map<string, Series>();

  constructor(o: HotHistogramOptions) {
    this.name = o.name;
    this.help = o.help;
    this.labelNames = o.labelNames ?? [];
    this.bounds = [...o.buckets];
    for (const r of o.registers) r.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values (in labelNames' order); keep it and call its observe. */
  child(...values: string[]): { observe(value: number): void } {
    const key = values.join("\u0000");
    let s = this.series.get(key);
    if (s === undefined) {
      s = new Series(Object.fromEntries(this.labelNames.map((n, i) => [n, values[i] ?? ""])), this.bounds);
      this.series.set(key, s);
    }
    return s;
  }

  /** Observes a value of the histogram without labels. */
  observe(value: number): void {
    (this.unlabelled ??= this.child() as Series).observe(value);
  }
  private unlabelled: Series | undefined;

  reset(): void {
    this.series.clear();
    this.unlabelled = undefined;
  }

  /** What prom-client's Registry exports (its Histogram's shape: cumulative buckets, +Inf, sum, count). */
  async getForPromString(): Promise<{ name: string; help: string; type: string; values: ValuePair[]; aggregator: string }> {
    const values: ValuePair[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels: s.labels, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: "+Inf" }, sharedLabels: s.labels, value: s.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The same as JSON (getMetricsAsJSON): each value's labels with its series' labels. */
  async get(): Promise<{ name: string; help: string; type: string; values: ValuePair[]; aggregator: string }> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ labels, sharedLabels, value, metricName }) => ({ labels: { ...labels, ...sharedLabels }, value, metricName })) };
  }
}
