// Prometheus metrics of a node (prom-client), one registry per node so several nodes can share a process in tests.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class RuntimeMetrics {
  readonly registry = new Registry();
  readonly messagesApplied = new Counter({ name: "airtwin_messages_applied_total", help: "Input messages applied", registers: [this.registry] });
  readonly itemsApplied = new Counter({ name: "airtwin_items_applied_total", help: "Entity inputs applied", labelNames: ["type", "kind"], registers: [this.registry] });
  readonly deadLetters = new Counter({
    name: "airtwin_dead_letters_total",
    help: "Inputs given up (dead-lettered), by source and reason (undecodable, refused, unknown-type)",
    labelNames: ["source", "reason"],
    registers: [this.registry],
  });
  readonly unitsApplied = new Counter({ name: "airtwin_units_applied_total", help: "Domain units applied (readings, for the device twin)", labelNames: ["type"], registers: [this.registry] });
  readonly applySeconds = new Histogram({
    name: "airtwin_apply_seconds",
    help: "Time to apply one input message (all its items)",
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
    registers: [this.registry],
  });
  readonly inputAgeSeconds = new Histogram({
    name: "airtwin_input_age_seconds",
    help: "Time from an input message's storing in its stream (the server's clock) to its applying (this node's), replays excluded: delivery and queueing ahead of the twin",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    registers: [this.registry],
  });
  readonly commitSeconds = new Histogram({
    name: "airtwin_commit_seconds",
    help: "Time of one shard commit (outputs confirmed, snapshots written, checkpoint, ack)",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly commitRecords = new Histogram({
    name: "airtwin_commit_records",
    help: "Snapshots written per commit",
    buckets: [0, 1, 10, 100, 1000, 10000],
    registers: [this.registry],
  });
  readonly commitBytes = new Counter({ name: "airtwin_commit_bytes_total", help: "Snapshot bytes written", registers: [this.registry] });
  readonly residentEntities = new Gauge({ name: "airtwin_resident_entities", help: "Entities with decoded state in memory", registers: [this.registry] });
  readonly compactEntities = new Gauge({
    name: "airtwin_compact_entities",
    help: "Entities held in memory as their encoded state only (compacted while idle, or read and not decoded yet): decoded on their next use",
    registers: [this.registry],
  });
  readonly compactBytes = new Gauge({ name: "airtwin_compact_bytes", help: "Encoded state bytes of the compact entities", registers: [this.registry] });
  readonly knownEntities = new Gauge({ name: "airtwin_known_entities", help: "Entities of owned shards (decoded, compact or passivated)", registers: [this.registry] });
  readonly shardsOwned = new Gauge({ name: "airtwin_shards_owned", help: "Shards this node serves", registers: [this.registry] });
  readonly consumerLag = new Gauge({ name: "airtwin_consumer_lag", help: "Input messages not yet delivered, per shard", labelNames: ["shard"], registers: [this.registry] });
  readonly redeliveriesSkipped = new Counter({
    name: "airtwin_redeliveries_skipped_total",
    help: "Entity inputs skipped because already applied (seq <= appliedSeq)",
    registers: [this.registry],
  });
  readonly commandsReplayed = new Counter({
    name: "airtwin_commands_replayed_total",
    help: "Keyed commands answered with the recorded reply of an earlier command with the same idempotency key, not applied again",
    registers: [this.registry],
  });
  readonly consumerStatus = new Counter({
    name: "airtwin_consumer_status_total",
    help: "Status notices of the input stream readers' consumers, by type (next: a pull sent; discard: a pull expired with messages left; heartbeats_missed: the client reset its pulls)",
    labelNames: ["type"],
    registers: [this.registry],
  });
  readonly deliveryGaps = new Counter({
    name: "airtwin_delivery_gaps_total",
    help: "Input stream readers reading again because deliveries were lost in transit (e.g. a slow-consumer disconnect)",
    registers: [this.registry],
  });
  readonly fencingRejections = new Counter({ name: "airtwin_fencing_rejections_total", help: "Writes refused because another owner fenced the shard", registers: [this.registry] });
  readonly handoffSeconds = new Histogram({
    name: "airtwin_handoff_seconds",
    help: "Shard start (claim, load) and stop (drain, commit) durations",
    labelNames: ["phase"],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly timersFired = new Counter({ name: "airtwin_timers_fired_total", help: "Entity wake-ups delivered", registers: [this.registry] });
  readonly timersQueued = new Gauge({
    name: "airtwin_timers_queued",
    help: "Wake-up entries queued on this node: about one per entity with a timer (plus earlier entries superseded but not yet due)",
    registers: [this.registry],
  });
  readonly outputsPublished = new Counter({ name: "airtwin_outputs_published_total", help: "Outputs published", registers: [this.registry] });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }
}
