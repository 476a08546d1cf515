// What the archive gives up: a message it cannot decode, or one its database refuses for its values
// (a fraction or an overflow for an int8 column, a NUL character in text or JSON, a key too large to
// index). Such a message was written by something other than airtwin — retrying it forever would stall
// its source, and everything behind it, for good — so it is counted
// (`airtwin_archive_errors_total{kind="decode"|"refused"}`), logged at warn, published on
// `<prefix>.dlq.archive.<source>` (the `<PREFIX>_DLQ` stream keeps it) and acknowledged.
import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { encode, msgpackHeaders, type LogFn } from "../../runtime/mod.ts";
import type { ArchiveMetrics } from "./metrics.ts";

/** Why the archive gave a message up. */
export type ArchiveDeadLetterReason = "undecodable" | "refused";

/** One message given up by the archive, as published on its dead-letter subject (MessagePack). */
export interface ArchiveDeadLetter {
  reason: ArchiveDeadLetterReason;
  /** The archive source ("in.0", "out", "snap.3", "registry"). */
  source: string;
  /** The subject the message arrived on. */
  subject: string;
  /** Its sequence in the source stream. */
  seq: number;
  error: string;
  /** Wall-clock ms when it was given up. */
  at: number;
  /** The message's bytes, at most {@link ARCHIVE_DEAD_LETTER_MAX_BYTES}. */
  data: Uint8Array;
  truncated?: true;
}

/** Bytes of the original kept: the letter must fit NATS's default 1 MiB payload. */
export const ARCHIVE_DEAD_LETTER_MAX_BYTES = 256 * 1024;

/** Records what the archive gives up; never throws, never waits. */
export type ArchiveDeadLetterFn = (source: string, m: Pick<JsMsg, "subject" | "seq" | "data">, reason: ArchiveDeadLetterReason, error: string) => void;

/** SQLSTATE classes that blame the data, not the database: data exceptions (22), integrity (23), program limits (54, e.g. an index row too large). */
export function refusesData(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(22|23|54)/.test(code);
}

export function archiveDeadLetters(o: { nc: NatsConnection; prefix: string; metrics: ArchiveMetrics; log: LogFn }): ArchiveDeadLetterFn {
  return (source, m, reason, error) => {
    o.metrics.errors.inc({ source, kind: reason === "undecodable" ? "decode" : "refused" });
    o.log("warn", "archive skipped a message it cannot store", { source, reason, subject: m.subject, seq: m.seq, error });
    try {
      const truncated = m.data.length > ARCHIVE_DEAD_LETTER_MAX_BYTES;
      const letter: ArchiveDeadLetter = {
        reason,
        source,
        subject: m.subject,
        seq: m.seq,
        error,
        at: Date.now(),
        data: truncated ? m.data.subarray(0, ARCHIVE_DEAD_LETTER_MAX_BYTES) : m.data,
        ...(truncated ? { truncated: true as const } : {}),
      };
      o.nc.publish(`${o.prefix}.dlq.archive.${source}`, encode(letter), { headers: msgpackHeaders() });
    } catch {
      // counted and logged; the stored copy is best effort (the connection may be closing)
    }
  };
}
