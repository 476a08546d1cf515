// A synthetic Foobot fleet for benchmarks: device ids, plausible readings every 5 minutes (an office's
// day, within the normal ranges, so few pollution events), input messages shaped like the gateway's
// batches, and a pipelined pre-fill of the input stream that records the last sequence per shard.
import type { NatsConnection } from "@nats-io/nats-core";
import { packReadings, type Reading } from "../../actors/device-twin/domain/mod.ts";
import { TWIN_TYPE } from "../../actors/device-twin/behavior.ts";
import { encodeBatch, type InputItem } from "../../runtime/envelope.ts";
import { PipelinedPublisher } from "../../runtime/publisher.ts";
import { shardOf } from "../../runtime/shard-id.ts";
import type { Names } from "../../runtime/subjects.ts";
import { rng } from "../../test/harness/rng.ts";

/** Foobots report every 5 minutes. */
export const READING_INTERVAL_MS = 300_000;
/** Event time of every device's first reading (a Monday, 00:00 UTC). */
export const T0 = Date.UTC(2025, 0, 6);

export function deviceId(i: number): string {
  return `dev-${String(i).padStart(7, "0")}`;
}

export { rng };

const q = (x: number, step: number) => Math.round(x / step) * step;

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * How occupied the room is at `t`, 0..1: an office, weekdays 08:00–18:00 UTC with an hour's ramp at
 * each end. The learned state reads occupancy from co2 and its rate: readings drawn independently
 * across the whole normal range flipped it about every second reading (0.53 occupancy outputs per
 * reading), which no real room does, and the benches measured publishing those instead of the runtime.
 */
export function presence(t: number): number {
  const day = Math.floor(t / DAY_MS);
  if ((day + 3) % 7 >= 5) return 0; // 1970-01-01 was a Thursday: 5, 6 are Saturday and Sunday
  const h = (t - day * DAY_MS) / HOUR_MS;
  return Math.max(0, Math.min(1, h - 8, 18 - h));
}

/**
 * One plausible indoor reading at `t` (all six channels, Foobot resolution): each channel follows the
 * room's occupancy and the time of day with small sensor noise, within the normal ranges, so few
 * pollution events and a couple of occupancy changes per working day.
 */
export function reading(rand: () => number, t: number): Reading {
  const p = presence(t);
  const dayPhase = (2 * Math.PI * (t % DAY_MS)) / DAY_MS;
  const noise = (amplitude: number) => (rand() * 2 - 1) * amplitude;
  return {
    t,
    pm: q(9 + 3 * Math.sin(dayPhase) + 2 * p + noise(1), 0.1),
    co2: Math.round(440 + 550 * p + noise(15)),
    voc: Math.round(150 + 150 * p + noise(10)),
    tmp: q(20 + 1.5 * p - 0.8 * Math.cos(dayPhase) + noise(0.05), 0.01),
    hum: q(40 + 5 * p + noise(0.3), 0.01),
    allpollu: q(15 + 10 * p + noise(1), 0.1),
  };
}

export interface Fleet {
  readonly ids: readonly string[];
  readonly shardOfDevice: Int32Array;
  /** Device indexes per shard. */
  readonly byShard: readonly number[][];
  /** Next reading index per device (readings are 5 minutes apart from T0). */
  readonly next: Uint32Array;
}

export function fleet(devices: number, shards: number): Fleet {
  const ids = Array.from({ length: devices }, (_, i) => deviceId(i));
  const shardOfDevice = new Int32Array(devices);
  const byShard: number[][] = Array.from({ length: shards }, () => []);
  ids.forEach((id, i) => {
    const s = shardOf(id, shards);
    shardOfDevice[i] = s;
    byShard[s]!.push(i);
  });
  return { ids, shardOfDevice, byShard, next: new Uint32Array(devices) };
}

/** The next `n` readings of device `i` (advances its clock). */
export function readingsOf(f: Fleet, i: number, n: number, rand: () => number): Reading[] {
  const out: Reading[] = [];
  const start = f.next[i]!;
  for (let k = 0; k < n; k++) out.push(reading(rand, T0 + (start + k) * READING_INTERVAL_MS));
  f.next[i] = start + n;
  return out;
}

export interface InputMessage {
  shard: number;
  data: Uint8Array;
  readings: number;
}

// logged as the gateway logs them (docs/design.md §5.1)
const item = (entityId: string, readings: Reading[]): InputItem => ({ type: TWIN_TYPE, entityId, kind: "readings", payload: packReadings(readings) });

/**
 * "Device batches": each message is one device's upload of `perMessage` readings (the gateway publishes
 * a device's request as one message); `rounds` uploads per device, devices interleaved.
 */
export function* deviceBatches(f: Fleet, rounds: number, perMessage: number, acceptedAt: number, seed = 1): Generator<InputMessage> {
  const rand = rng(seed);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < f.ids.length; i++) {
      const readings = readingsOf(f, i, perMessage, rand);
      yield { shard: f.shardOfDevice[i]!, data: encodeBatch({ acceptedAt, items: [item(f.ids[i]!, readings)] }), readings: perMessage };
    }
  }
}

/**
 * "Fleet batches": every device reports one reading per round (every 5 minutes), and the gateway's
 * micro-batcher packs `perMessage` of them (from different devices of one shard) into each message.
 */
export function* fleetBatches(f: Fleet, rounds: number, perMessage: number, acceptedAt: number, seed = 2): Generator<InputMessage> {
  const rand = rng(seed);
  const pending: InputItem[][] = f.byShard.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let s = 0; s < f.byShard.length; s++) {
      const buf = pending[s]!;
      for (const i of f.byShard[s]!) {
        buf.push(item(f.ids[i]!, readingsOf(f, i, 1, rand)));
        if (buf.length === perMessage) {
          yield { shard: s, data: encodeBatch({ acceptedAt, items: buf }), readings: perMessage };
          buf.length = 0;
        }
      }
    }
  }
  for (let s = 0; s < pending.length; s++) {
    const buf = pending[s]!;
    if (buf.length > 0) yield { shard: s, data: encodeBatch({ acceptedAt, items: buf }), readings: buf.length };
  }
}

export interface Prefilled {
  messages: number;
  readings: number;
  bytes: number;
  /** Stream sequence of the last message of each shard (0: none). */
  lastSeq: number[];
}

/** Publishes the messages to their shards' input subjects, pipelined, and waits for every PubAck. */
export async function prefill(nc: NatsConnection, names: Names, shards: number, messages: Iterable<InputMessage>): Promise<Prefilled> {
  const publisher = new PipelinedPublisher(nc, { maxInFlight: 2048, ackTimeoutMs: 30_000 });
  const lastSeq = new Array<number>(shards).fill(0);
  const acks: Promise<void>[] = [];
  let count = 0;
  let readings = 0;
  let bytes = 0;
  try {
    for (const m of messages) {
      count++;
      readings += m.readings;
      bytes += m.data.length;
      const shard = m.shard;
      acks.push(publisher.publish(names.input(shard), m.data).then((ack) => void (lastSeq[shard] = Math.max(lastSeq[shard]!, ack.seq))));
      if (acks.length >= 4096) await Promise.all(acks.splice(0));
    }
    await Promise.all(acks);
  } finally {
    publisher.close();
  }
  return { messages: count, readings, bytes, lastSeq };
}
