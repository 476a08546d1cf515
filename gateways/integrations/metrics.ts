// Prometheus metrics of the integrations service (prom-client), labelled by provider. One registry per
// service, so several can share a process (tests, `airtwin dev`'s in-process use).
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export class IntegrationMetrics {
  readonly registry: Registry;
  readonly delivered: Counter<"provider">;
  readonly retried: Counter<"provider">;
  readonly deadLettered: Counter<"provider">;
  readonly dropped: Counter<"provider" | "reason">;
  readonly disabled: Counter<"provider">;
  readonly deliverySeconds: Histogram<"provider">;
  readonly endToEndSeconds: Histogram<"provider">;
  readonly inFlight: Gauge<"provider">;
  /** Each running provider's count of deliveries in flight, read when the gauge is collected (not kept per delivery). */
  private readonly inFlightCounts = new Map<string, () => number>();

  constructor(registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.delivered = new Counter({ name: "airtwin_integration_delivered_total", help: "Deliveries the partner accepted", labelNames: ["provider"], registers });
    this.retried = new Counter({ name: "airtwin_integration_retried_total", help: "Failed attempts put back for a later retry", labelNames: ["provider"], registers });
    this.deadLettered = new Counter({ name: "airtwin_integration_dead_lettered_total", help: "Deliveries given up and published to the dead-letter subject", labelNames: ["provider"], registers });
    this.dropped = new Counter({
      name: "airtwin_integration_dropped_total",
      help: "Deliveries not attempted: unsubscribed (the twin no longer has the subscription), stale (older than maxAgeMs)",
      labelNames: ["provider", "reason"],
      registers,
    });
    this.disabled = new Counter({ name: "airtwin_integration_disabled_total", help: "Subscriptions removed because the partner said the target is gone (e.g. HTTP 410)", labelNames: ["provider"], registers });
    this.deliverySeconds = new Histogram({
      name: "airtwin_integration_delivery_seconds",
      help: "Duration of one delivery attempt (the partner call), successful or not",
      labelNames: ["provider"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.endToEndSeconds = new Histogram({
      name: "airtwin_integration_end_to_end_seconds",
      help: "From the twin publishing an integration message to the partner accepting it (retries included)",
      labelNames: ["provider"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600, 3600],
      registers,
    });
    const counts = this.inFlightCounts;
    this.inFlight = new Gauge({
      name: "airtwin_integration_in_flight",
      help: "Deliveries being attempted now",
      labelNames: ["provider"],
      registers,
      collect() {
        for (const [provider, count] of counts) this.set({ provider }, count());
      },
    });
  }

  /** Reports `count()` as the provider's in-flight gauge from now on; the returned function stops it (the gauge reads 0). */
  trackInFlight(provider: string, count: () => number): () => void {
    this.inFlightCounts.set(provider, count);
    return () => {
      if (this.inFlightCounts.get(provider) !== count) return;
      this.inFlightCounts.delete(provider);
      this.inFlight.set({ provider }, 0);
    };
  }
}
