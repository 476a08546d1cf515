// A deterministic device fleet for integration tests, and the reference it must end up as.
//
// `generateFleet` makes N devices' readings (seeded PRNG; Foobot-like values on six channels, a reading
// every 5 minutes, some channels missing now and then) cut into messages of `batchSize` readings sorted
// by `t`, as the gateway would log them. On purpose some messages carry a duplicate (the same `t` twice,
// or the previous message's last `t` again) and some a late reading (older than what was applied).
//
// `FleetReference` is the independent oracle: it replays exactly what was sent, message by message, with
// the rules of docs/design.md §4 written out plainly (applied / duplicate / late; count, mean, min, max, last per
// channel). Tests compare what the cluster shows with it.

import { expect } from "vitest";
import type { RuntimeClient } from "../../../runtime/client.ts";
import { CHANNELS, type Channel, type Reading } from "../../../actors/device-twin/domain/types.ts";
import { rng as prng } from "../../harness/rng.ts";

/** Entity type and input kind of the device twin in the runtime. */
export const TWIN = "twin";
export const READINGS = "readings";

export { prng };

/** Options of {@link generateFleet}. */
export interface FleetOptions {
  devices: number;
  /** Readings sent per device, duplicates and late ones included. */
  readingsPerDevice: number;
  /** Readings per message. */
  batchSize: number;
  seed: number;
  /** Device ids are `<idPrefix><index>`. Default "dev-". */
  idPrefix?: string;
  /** Event time of the first reading (ms). Default 2026-01-05T00:00Z. */
  startT?: number;
  /** Event time between readings (ms). Default 5 minutes (Foobot). */
  intervalMs?: number;
  /** Chance that a message carries a duplicate. Default 0.1. */
  duplicateRate?: number;
  /** Chance that a message (not the first) carries a late reading. Default 0.1. */
  lateRate?: number;
}

/** One logged input: a device's readings, sorted by `t`. */
export interface DeviceMessage {
  deviceId: string;
  readings: Reading[];
}

export interface Fleet {
  readonly ids: string[];
  /** `rounds[r]` holds every device's r-th message (devices in id order). Send round by round. */
  readonly rounds: DeviceMessage[][];
  /** Readings in all messages. */
  readonly totalReadings: number;
  /** How many duplicates and late readings were put in on purpose. */
  readonly planted: { duplicates: number; late: number };
}

/** Realistic ranges and step sizes of a random walk per channel; `decimals` = the twin's quantum. */
const WALK: Record<Channel, { min: number; max: number; step: number; decimals: number; start: [number, number] }> = {
  pm: { min: 0, max: 250, step: 4, decimals: 1, start: [3, 40] },
  co2: { min: 380, max: 3000, step: 60, decimals: 0, start: [420, 1200] },
  voc: { min: 0, max: 1500, step: 30, decimals: 0, start: [80, 400] },
  tmp: { min: 15, max: 30, step: 0.3, decimals: 2, start: [19, 25] },
  hum: { min: 15, max: 80, step: 1.5, decimals: 2, start: [30, 60] },
  allpollu: { min: 0, max: 150, step: 5, decimals: 1, start: [5, 60] },
};

const round = (x: number, decimals: number): number => Number(x.toFixed(decimals));

/** Generates the fleet; the same options always give the same messages. */
export function generateFleet(o: FleetOptions): Fleet {
  const rand = prng(o.seed);
  const startT = o.startT ?? Date.UTC(2026, 0, 5);
  const intervalMs = o.intervalMs ?? 300_000;
  const duplicateRate = o.duplicateRate ?? 0.1;
  const lateRate = o.lateRate ?? 0.1;
  const ids = Array.from({ length: o.devices }, (_, i) => `${o.idPrefix ?? "dev-"}${String(i).padStart(5, "0")}`);
  const messagesPerDevice = Math.ceil(o.readingsPerDevice / o.batchSize);
  const rounds: DeviceMessage[][] = Array.from({ length: messagesPerDevice }, () => []);
  const planted = { duplicates: 0, late: 0 };
  let totalReadings = 0;

  for (const deviceId of ids) {
    const level = {} as Record<Channel, number>;
    for (const ch of CHANNELS) level[ch] = WALK[ch].start[0] + rand() * (WALK[ch].start[1] - WALK[ch].start[0]);
    // devices do not report in lockstep: a phase within the first interval
    let t = startT + Math.floor(rand() * intervalMs);
    const sample = (at: number): Reading => {
      const r: Reading = { t: at };
      for (const ch of CHANNELS) {
        const w = WALK[ch];
        level[ch] = Math.min(w.max, Math.max(w.min, level[ch] + (rand() - 0.5) * 2 * w.step));
        // now and then a channel is missing from a reading
        if (rand() < 0.03) continue;
        r[ch] = round(level[ch], w.decimals);
      }
      return r;
    };
    let left = o.readingsPerDevice;
    let previous: Reading[] | undefined;
    for (let m = 0; m < messagesPerDevice; m++) {
      const size = Math.min(o.batchSize, left);
      left -= size;
      const readings: Reading[] = [];
      let fresh = size;
      const late = previous !== undefined && size >= 3 && rand() < lateRate;
      const duplicate = size >= 3 && rand() < duplicateRate;
      if (late) fresh--;
      if (duplicate) fresh--;
      for (let i = 0; i < fresh; i++) {
        readings.push(sample(t));
        t += intervalMs;
      }
      if (late) {
        // older than everything applied so far from the previous message's end, but not equal to it
        const prevLast = previous![previous!.length - 1]!.t;
        readings.push({ ...sample(prevLast - intervalMs * (1 + Math.floor(rand() * 3)) - 1000) });
        planted.late++;
      }
      if (duplicate) {
        // a resend: either of a reading in this message, or of the previous message's last one
        const source = previous !== undefined && rand() < 0.5 ? previous[previous.length - 1]! : readings[Math.floor(rand() * fresh)]!;
        readings.push({ ...source });
        planted.duplicates++;
      }
      readings.sort((a, b) => a.t - b.t); // stable: a duplicate lands next to its original
      rounds[m]!.push({ deviceId, readings });
      totalReadings += readings.length;
      previous = readings;
    }
  }
  return { ids, rounds, totalReadings, planted };
}

/** Per-channel reference statistics. */
export interface ChannelReference {
  count: number;
  sum: number;
  min: number;
  max: number;
  last: number;
}

/** What one device's twin must show. */
export interface DeviceReference {
  /** Readings the device sent (every message that was accepted). */
  sent: number;
  readings: number;
  duplicates: number;
  late: number;
  lastT: number | undefined;
  channels: Partial<Record<Channel, ChannelReference>>;
}

/** The oracle: feed it every message the log accepted, in the order it was sent. */
export class FleetReference {
  readonly devices = new Map<string, DeviceReference>();

  /** Records an accepted message; call in send order per device. */
  accept(msg: DeviceMessage): void {
    let d = this.devices.get(msg.deviceId);
    if (d === undefined) {
      d = { sent: 0, readings: 0, duplicates: 0, late: 0, lastT: undefined, channels: {} };
      this.devices.set(msg.deviceId, d);
    }
    for (const r of msg.readings) {
      d.sent++;
      if (d.lastT !== undefined && r.t === d.lastT) {
        d.duplicates++;
        continue;
      }
      if (d.lastT !== undefined && r.t < d.lastT) {
        d.late++;
        continue;
      }
      d.lastT = r.t;
      d.readings++;
      for (const ch of CHANNELS) {
        const x = r[ch];
        if (x === undefined) continue;
        const c = d.channels[ch];
        if (c === undefined) d.channels[ch] = { count: 1, sum: x, min: x, max: x, last: x };
        else {
          c.count++;
          c.sum += x;
          c.min = Math.min(c.min, x);
          c.max = Math.max(c.max, x);
          c.last = x;
        }
      }
    }
  }

  get(deviceId: string): DeviceReference {
    const d = this.devices.get(deviceId);
    if (d === undefined) throw new Error(`no reference for ${deviceId}`);
    return d;
  }

  /** Totals over all devices. */
  totals(): { sent: number; readings: number; duplicates: number; late: number } {
    const t = { sent: 0, readings: 0, duplicates: 0, late: 0 };
    for (const d of this.devices.values()) {
      t.sent += d.sent;
      t.readings += d.readings;
      t.duplicates += d.duplicates;
      t.late += d.late;
    }
    return t;
  }
}

/** The parts of the twin's view (GET /v1/devices/:id) the reference speaks about. */
export interface TwinViewLike {
  readings: number;
  duplicates: number;
  late: number;
  lastT?: number;
  channels: Partial<Record<Channel, { count: number; mean: number; min: number; max: number; last: number }>>;
}

/**
 * Asserts that a device's view equals its reference exactly (the mean up to float rounding).
 * `resentReadings`: readings the device sent again after a send was not accepted — each may have been
 * stored the first time too, and then counts once more as a duplicate or late one (never applied).
 */
export function expectMatchesReference(deviceId: string, view: TwinViewLike, ref: DeviceReference, resentReadings = 0): void {
  const where = `device ${deviceId}`;
  expect({ readings: view.readings, lastT: view.lastT }, where).toEqual({ readings: ref.readings, lastT: ref.lastT });
  if (resentReadings === 0) {
    expect({ duplicates: view.duplicates, late: view.late }, where).toEqual({ duplicates: ref.duplicates, late: ref.late });
  } else {
    expect(view.duplicates, where).toBeGreaterThanOrEqual(ref.duplicates);
    expect(view.late, where).toBeGreaterThanOrEqual(ref.late);
    expect(view.duplicates + view.late - ref.duplicates - ref.late, `${where}: more taken in twice than was resent`).toBeLessThanOrEqual(resentReadings);
  }
  for (const ch of CHANNELS) {
    const r = ref.channels[ch];
    const v = view.channels[ch];
    if (r === undefined) {
      expect(v, `${where} ${ch}`).toBeUndefined();
      continue;
    }
    expect(v, `${where} ${ch}`).toBeDefined();
    expect({ count: v!.count, min: v!.min, max: v!.max, last: v!.last }, `${where} ${ch}`).toEqual({ count: r.count, min: r.min, max: r.max, last: r.last });
    const mean = r.sum / r.count;
    expect(Math.abs(v!.mean - mean), `${where} ${ch} mean ${v!.mean} vs ${mean}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(mean)));
  }
}

/** Options of {@link sendMessages}. */
export interface SendOptions {
  /** Most sends awaiting PubAck. Default 4000. */
  inFlight?: number;
  /** Called after each accepted message with the number accepted so far. */
  onAccepted?: (accepted: number) => void;
  /** Pace: at most this many messages per second (a steady background load). Default: as fast as acks allow. */
  ratePerSec?: number;
  /** Set `stopped` to end the load early: no message is sent after that (those in flight still count). */
  stop?: { stopped: boolean };
}

/**
 * Sends messages in order through the client (pipelined, `inFlight` awaiting PubAck) and records each
 * accepted one in the reference. Rejects on the first send that was not accepted: tests here run with
 * NATS up, so an unaccepted send is a failure, not something to retry around.
 */
export async function sendMessages(client: RuntimeClient, messages: Iterable<DeviceMessage>, ref: FleetReference, o: SendOptions = {}): Promise<number> {
  const limit = o.inFlight ?? 4000;
  const pending = new Set<Promise<unknown>>();
  let accepted = 0;
  let sent = 0;
  let failure: unknown;
  const started = performance.now();
  const stopped = (): boolean => o.stop?.stopped === true;
  for (const msg of messages) {
    if (failure !== undefined || stopped()) break;
    if (o.ratePerSec !== undefined) {
      const dueMs = (sent / o.ratePerSec) * 1000 - (performance.now() - started);
      if (dueMs > 0) await new Promise((r) => setTimeout(r, dueMs)); // pacing a load, not synchronisation
      if (stopped()) break;
    }
    sent++;
    // recorded at send time, in send order: per device the log keeps this order
    ref.accept(msg);
    const p = client.send(TWIN, msg.deviceId, READINGS, msg.readings).then(
      () => {
        accepted++;
        o.onAccepted?.(accepted);
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    pending.add(p);
    void p.finally(() => pending.delete(p));
    if (pending.size >= limit) await Promise.race(pending);
  }
  await Promise.all(pending);
  if (failure !== undefined) throw new Error(`a send was not accepted: ${(failure as Error).message}`, { cause: failure });
  return accepted;
}

/** Options of {@link sendResending}. */
export interface ResendOptions {
  /** Devices sending at once (each one message at a time). Default 100. */
  devicesInFlight?: number;
  /** Called after each accepted message with the number accepted so far. */
  onAccepted?: (accepted: number) => void;
  /** Wait before a resend (ms). Default 250. */
  backoffMs?: number;
  /** Give up (reject) after this long (ms). Default 120 000. */
  timeoutMs?: number;
}

/**
 * Sends the fleet as devices behind the gateway do when NATS has trouble: each device sends its next
 * message only once the previous one was accepted, and sends a message again while it is not (the
 * gateway's 503 says "resend"). Records each message in the reference once, in the device's order;
 * returns how many messages were resent and the readings resent per device (see {@link expectMatchesReference}).
 */
export async function sendResending(
  client: RuntimeClient,
  fleet: Fleet,
  ref: FleetReference,
  o: ResendOptions = {},
): Promise<{ accepted: number; resends: number; resentReadings: Map<string, number> }> {
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  const resentReadings = new Map<string, number>();
  let accepted = 0;
  let resends = 0;
  await eachLimited(fleet.ids, o.devicesInFlight ?? 100, async (_id, index) => {
    for (const round of fleet.rounds) {
      const msg = round[index]!;
      ref.accept(msg);
      for (;;) {
        try {
          await client.send(TWIN, msg.deviceId, READINGS, msg.readings);
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`${msg.deviceId}: still not accepted: ${(err as Error).message}`, { cause: err });
          resends++;
          resentReadings.set(msg.deviceId, (resentReadings.get(msg.deviceId) ?? 0) + msg.readings.length);
          await new Promise((r) => setTimeout(r, o.backoffMs ?? 250)); // a device's retry delay
        }
      }
      o.onAccepted?.(++accepted);
    }
  });
  return { accepted, resends, resentReadings };
}

/** Every message of the fleet, round by round. */
export function* allMessages(fleet: Fleet, fromRound = 0, toRound = fleet.rounds.length): Generator<DeviceMessage> {
  for (let r = fromRound; r < toRound; r++) yield* fleet.rounds[r]!;
}

/** Live view of one device (the twin's query answer), or undefined when no owner answered in time. */
export async function liveView(client: RuntimeClient, deviceId: string, timeoutMs = 5000): Promise<TwinViewLike & Record<string, unknown>> {
  const r = await client.get(TWIN, deviceId, null, { timeoutMs });
  if (!r.ok) throw new Error(`get ${deviceId}: ${r.error.code} ${r.error.message}`);
  return r.value as TwinViewLike & Record<string, unknown>;
}

/** Runs `fn` over `items`, `limit` at a time. */
export async function eachLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Polls the live views until every device has taken in every reading it was sent (applied + duplicates
 * + late = sent), then returns the views. A device that took in more than it was sent fails at once:
 * that is a double apply, and waiting would not undo it. With `resentReadings` (see {@link sendResending})
 * a device may take in up to that many more, and is done once it applied all it should (`readings` and
 * `lastT`): its later messages were sent only after the earlier ones were accepted, so they come after
 * every copy of those in the log.
 */
export async function waitApplied(
  client: RuntimeClient,
  ids: readonly string[],
  ref: FleetReference,
  o: { timeoutMs?: number; intervalMs?: number; resentReadings?: ReadonlyMap<string, number> } = {},
): Promise<Map<string, TwinViewLike & Record<string, unknown>>> {
  const deadline = Date.now() + (o.timeoutMs ?? 180_000);
  const views = new Map<string, TwinViewLike & Record<string, unknown>>();
  let todo = [...ids];
  for (;;) {
    const left: string[] = [];
    await eachLimited(todo, 100, async (id) => {
      const v = await liveView(client, id).catch(() => undefined);
      const r = ref.get(id);
      const resent = o.resentReadings?.get(id) ?? 0;
      const seen = v === undefined ? -1 : v.readings + v.duplicates + v.late;
      if (seen > r.sent + resent) {
        throw new Error(`device ${id} took in ${seen} readings but was sent ${r.sent} (${resent} resent): ${JSON.stringify({ readings: v!.readings, duplicates: v!.duplicates, late: v!.late })}`);
      }
      const done = resent === 0 ? seen === r.sent : seen >= r.sent && v!.readings === r.readings && v!.lastT === r.lastT;
      if (done) views.set(id, v!);
      else left.push(id);
    });
    if (left.length === 0) return views;
    if (Date.now() > deadline) throw new Error(`${left.length} devices not fully applied in time, e.g. ${left.slice(0, 5).join(", ")}`);
    todo = left;
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 200));
  }
}
