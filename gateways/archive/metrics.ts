// Prometheus metrics of an archive process (prom-client), one registry per archive so tests can run
// several in one process. Served at the archive's /metrics; the same figures answer GET /v1/ops/archive.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class ArchiveMetrics {
  readonly registry = new Registry();
  readonly lag = new Gauge({
    name: "airtwin_archive_lag_messages",
    help: "Messages of a source stream not yet archived (pending + delivered but unacknowledged), per consumer",
    labelNames: ["source"],
    registers: [this.registry],
  });
  readonly rows = new Counter({ name: "airtwin_archive_rows_total", help: "Rows written, by table", labelNames: ["table"], registers: [this.registry] });
  readonly messages = new Counter({ name: "airtwin_archive_messages_total", help: "Messages archived and acknowledged, by source", labelNames: ["source"], registers: [this.registry] });
  readonly batchSeconds = new Histogram({
    name: "airtwin_archive_batch_seconds",
    help: "Time of one batch's transaction (statements and commit)",
    labelNames: ["source"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly errors = new Counter({ name: "airtwin_archive_errors_total", help: "Failed batch writes (retried) and undecodable messages, by source and kind", labelNames: ["source", "kind"], registers: [this.registry] });
  readonly dropped = new Counter({ name: "airtwin_archive_partitions_dropped_total", help: "Raw reading partitions dropped by retention", registers: [this.registry] });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }
}
