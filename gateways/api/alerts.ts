// Recent alerts of one device, read back from the output stream (`<PREFIX>_OUT`): an ordered consumer
// filtered on `<prefix>.out.alert.<deviceId>.>` starting at a stored time, read until caught up, then
// deleted. What the stream retains (7 days by default) is "recent"; older history comes from the
// archive (a later issue).
import { jetstream, type Consumer, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Alert } from "../../actors/device-twin/domain/mod.ts";
import { decode, isStreamNotFound, RuntimeError, type Names } from "../../runtime/mod.ts";

/** Where alerts come from; the HTTP routes and tests use this interface. */
export interface AlertSource {
  /**
   * Alerts of `deviceId` with `fromMs <= at < toMs`, oldest first (stream order), at most `limit`;
   * `truncated` when more were left. Only alerts stored at or after `storedSinceMs` (wall clock): the
   * device's registration, so a device id registered again never shows an earlier device's alerts.
   */
  recent(deviceId: string, fromMs: number, toMs: number, limit: number, storedSinceMs?: number): Promise<{ alerts: Alert[]; truncated: boolean }>;
}

/**
 * How far ahead of the servers' clocks a device's clock may run and its alerts still be found by event
 * time: an alert is looked for among those stored since `from` minus this. A day covers a device that
 * sends local time as UTC (up to UTC+14); it costs a query one more day of the stream to skip through.
 */
export const DEVICE_CLOCK_AHEAD_MS = 24 * 3_600_000;

/** Most messages fetched per round trip. */
const FETCH = 256;

export class StreamAlertSource implements AlertSource {
  private readonly js: JetStreamClient;

  constructor(
    nc: NatsConnection,
    private readonly names: Names,
  ) {
    this.js = jetstream(nc);
  }

  async recent(deviceId: string, fromMs: number, toMs: number, limit: number, storedSinceMs = 0): Promise<{ alerts: Alert[]; truncated: boolean }> {
    let consumer: Consumer;
    try {
      // Start at the stored time that can hold the first alert with at >= fromMs, then filter on `at`.
      // An alert is stored after its event time, except when the device's clock runs ahead: up to
      // DEVICE_CLOCK_AHEAD_MS is allowed for (a device sending local time as UTC is up to 14 h ahead).
      consumer = await this.js.consumers.get(this.names.outputStream, {
        filter_subjects: `${this.names.outputRoot}.alert.${deviceId}.>`,
        opt_start_time: new Date(Math.max(0, fromMs - DEVICE_CLOCK_AHEAD_MS, storedSinceMs)).toISOString(),
      });
    } catch (err) {
      if (isStreamNotFound(err)) return { alerts: [], truncated: false }; // no node has created it yet
      throw new RuntimeError("NATS_UNAVAILABLE", `cannot read alerts: ${(err as Error).message}`, { cause: err });
    }
    const alerts: Alert[] = [];
    let pending = 0;
    try {
      pending = (await consumer.info(true)).num_pending;
      while (pending > 0 && alerts.length < limit) {
        const batch = await consumer.fetch({ max_messages: Math.min(pending, FETCH), expires: 2000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          pending = m.info.pending;
          const a = alertOf(m.data);
          if (a !== undefined && a.at >= fromMs && a.at < toMs) alerts.push(a);
          if (alerts.length >= limit) break;
        }
        if (got === 0) break;
      }
    } catch (err) {
      throw new RuntimeError("NATS_UNAVAILABLE", `cannot read alerts: ${(err as Error).message}`, { cause: err });
    } finally {
      void consumer.delete().catch(() => undefined);
    }
    return { alerts, truncated: pending > 0 && alerts.length >= limit };
  }
}

/** An alert from the output stream, or undefined for anything no twin wrote (skipped: it must not cost the route its answer). */
function alertOf(data: Uint8Array): Alert | undefined {
  try {
    const a = decode<Partial<Alert> | null>(data);
    return typeof a === "object" && a !== null && typeof a.at === "number" && typeof a.kind === "string" && typeof a.id === "string" ? (a as Alert) : undefined;
  } catch {
    return undefined;
  }
}
