// Dead letters: inputs the runtime consumed but could not apply, and snapshots it could not read
// (written by something other than an owner: the entity starts afresh). Each one is counted
// (`airtwin_dead_letters_total{source,reason}`), logged at warn (bad input is the sender's fault, not
// the node's), and published on `<prefix>.dlq.<source>.<shard>` — the `<PREFIX>_DLQ` stream keeps them
// 30 days — so an operator can see what was dropped and why. Recording never waits and never throws:
// a dead letter must not stall or stop the shard that found it.
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { encode, MSGPACK_CONTENT_TYPE } from "./codec.ts";
import type { LogFn } from "./log.ts";
import type { RuntimeMetrics } from "./metrics.ts";
import type { Names } from "./subjects.ts";

/**
 * Why an input was given up:
 * - "undecodable": the message is not an input batch (not MessagePack, truncated, wrong shape, unknown version);
 * - "refused": the entity's behaviour refused to apply an item (it threw: a payload of the wrong shape or values);
 * - "unknown-type": an item names an entity type no behaviour serves.
 */
export type DeadLetterReason = "undecodable" | "refused" | "unknown-type";

/** One input given up, as published on the dead-letter subject (MessagePack). */
export interface DeadLetter {
  reason: DeadLetterReason;
  /** What consumed it: "input" (a shard's input stream) or "snapshot" (a shard's snapshot bucket, read at its start or when an entity wakes). */
  source: string;
  /** The subject the message arrived on. */
  subject: string;
  shard: number;
  /** Stream sequence of the input message (0 for a snapshot). */
  seq: number;
  /** Position of the item in its message (not for undecodable messages). */
  index?: number;
  /** The item's entity and kind ("snapshot" for a snapshot); absent for an undecodable input message. */
  entity?: { type: string; id: string; kind: string };
  /** What went wrong. */
  error: string;
  /** Wall-clock ms when it was given up. */
  at: number;
  /** The message's bytes (undecodable) or the item's payload re-encoded, at most {@link DEAD_LETTER_MAX_DATA_BYTES}. */
  data: Uint8Array;
  /** True when `data` was cut to the limit. */
  truncated?: true;
}

/** Bytes of the original kept in a dead letter: its own message must fit NATS's default 1 MiB payload. */
export const DEAD_LETTER_MAX_DATA_BYTES = 256 * 1024;

/** Where the runtime hands what it gives up. */
export interface DeadLetterSink {
  record(letter: Omit<DeadLetter, "at" | "data" | "truncated"> & { data: Uint8Array | (() => Uint8Array) }): void;
}

/** The dead-letter subject of a source and shard. */
export function deadLetterSubject(names: Names, source: string, shard: number): string {
  return `${names.prefix}.dlq.${source}.${shard}`;
}

export class DeadLetters implements DeadLetterSink {
  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
    private readonly metrics: RuntimeMetrics,
    private readonly log: LogFn,
  ) {}

  record(given: Parameters<DeadLetterSink["record"]>[0]): void {
    this.metrics.deadLetters.inc({ source: given.source, reason: given.reason });
    this.log("warn", `${given.source} dead-lettered`, {
      reason: given.reason,
      shard: given.shard,
      seq: given.seq,
      ...(given.index === undefined ? {} : { index: given.index }),
      ...(given.entity === undefined ? {} : { entity: given.entity }),
      error: given.error,
    });
    try {
      const full = typeof given.data === "function" ? given.data() : given.data;
      const truncated = full.length > DEAD_LETTER_MAX_DATA_BYTES;
      const letter: DeadLetter = { ...given, at: Date.now(), data: truncated ? full.subarray(0, DEAD_LETTER_MAX_DATA_BYTES) : full, ...(truncated ? { truncated: true as const } : {}) };
      const h = headers();
      h.set("Content-Type", MSGPACK_CONTENT_TYPE);
      // a redelivered message (a restart from the checkpoint) is dead-lettered once within the stream's duplicate window
      h.set("Nats-Msg-Id", `dlq:${given.source}:${given.shard}:${given.seq}:${given.index ?? "-"}:${given.entity === undefined ? "" : `${given.entity.type}.${given.entity.id}`}`);
      // fire and forget: the log line and the metric are the record that cannot be lost
      this.nc.publish(deadLetterSubject(this.names, given.source, given.shard), encode(letter), { headers: h });
    } catch (err) {
      this.log("warn", "dead letter not published", { shard: given.shard, seq: given.seq, error: (err as Error).message });
    }
  }
}
