// Prometheus metrics of a gateway (prom-client), one registry per gateway so several can share a process
// in tests. Served at GET /metrics.
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { HotHistogram } from "./hot-histogram.ts";

export class GatewayMetrics {
  readonly registry = new Registry();
  // every request observes these three: HotHistogram, prom-client's observe costs a label hash per call
  readonly requestSeconds = new HotHistogram({
    name: "airtwin_gateway_http_request_duration_seconds",
    help: "HTTP request duration by route pattern, method and status",
    labelNames: ["route", "method", "status"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly readingsAccepted = new Counter({
    name: "airtwin_gateway_readings_accepted_total",
    help: "Readings stored in the input log (answered 202)",
    registers: [this.registry],
  });
  readonly readingsRejected = new Counter({
    name: "airtwin_gateway_readings_rejected_total",
    help: "Readings in requests that were refused, by error code (unparseable bodies count 0 readings)",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly ingestBatchReadings = new HotHistogram({
    name: "airtwin_gateway_ingest_batch_readings",
    help: "Readings per accepted ingest request",
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers: [this.registry],
  });
  readonly publishAckSeconds = new HotHistogram({
    name: "airtwin_gateway_publish_ack_seconds",
    help: "Time from handing readings to the runtime client to JetStream's PubAck (micro-batch linger included)",
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly natsReconnects = new Counter({
    name: "airtwin_gateway_nats_reconnects_total",
    help: "Reconnections to NATS",
    registers: [this.registry],
  });
  readonly natsConnected = new Gauge({
    name: "airtwin_gateway_nats_connected",
    help: "1 while connected to NATS",
    registers: [this.registry],
  });
  readonly liveStreams = new Gauge({
    name: "airtwin_gateway_live_streams",
    help: "Open server-sent-event streams",
    registers: [this.registry],
  });
  readonly httpRefused = new Counter({
    name: "airtwin_gateway_http_refused_total",
    help: "HTTP clients refused before a route ran (timeouts, malformed requests, oversized headers, CONNECT, too many connections), by error code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly serviceRequests = new Counter({
    name: "airtwin_gateway_nats_service_requests_total",
    help: "Requests answered on <prefix>.api.cmd/get.<deviceId>, by verb and status",
    labelNames: ["verb", "status"],
    registers: [this.registry],
  });

  /** Series of the request histogram by route, method and status: a request costs one map lookup. */
  private readonly requestChildren = new Map<string, { observe(v: number): void }>();

  /** Records one HTTP request's duration under its route pattern, method and status. */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const key = `${route} ${method} ${status}`;
    let child = this.requestChildren.get(key);
    if (child === undefined) {
      child = this.requestSeconds.child(route, method, String(status));
      this.requestChildren.set(key, child);
    }
    child.observe(seconds);
  }

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }
}
