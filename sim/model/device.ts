// One simulated monitor: samples its room's air on a fixed grid of event times, adds its sensor's slow
// drift and noise, and uploads the readings as a real device would — one upload per sample, nothing
// during a power outage, the buffered readings in one backfill after a network outage, and now and
// then the same upload again (its 202 was lost), which the twin counts as duplicates.
import { MAX_READINGS_PER_REQUEST, type Reading } from "../../actors/device-twin/domain/mod.ts";
import { DAY_MS, dayPlan, type DayPlan, type FaultOptions } from "./day-plan.ts";
import { createRandom, mixSeed, type Random } from "./random.ts";
import { advanceAir, restingAir, type RoomAir } from "./room.ts";
import { roomProfile, type RoomKind, type RoomProfile } from "./rooms.ts";

/** Why an upload is sent. */
export type UploadKind = "live" | "backfill" | "resend";

/** Readings a device sends in one request, at event time `sendAt`. */
export interface Upload {
  deviceId: string;
  sendAt: number;
  readings: Reading[];
  kind: UploadKind;
}

export interface DeviceFaultOptions extends FaultOptions {
  /** Probability that an upload is sent twice. Default 0.01. */
  duplicateProbability?: number;
}

export interface DeviceSimOptions {
  /** The fleet's seed. */
  seed: number;
  /** The device's number in its fleet (its randomness and room derive from seed and index). */
  index: number;
  deviceId: string;
  /** Room kind; default drawn from seed and index. */
  kind?: RoomKind;
  /** Event time from which samples are taken (ms). */
  startMs: number;
  /** Event time between two samples (ms). */
  intervalMs: number;
  /** Outages and resends; `false` for none. */
  faults?: DeviceFaultOptions | false;
  /** Event time simulated before `startMs` so the room starts in a lived-in state (ms). Default 12 h. */
  warmUpMs?: number;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
const clamp = (x: number, min: number, max: number) => Math.min(max, Math.max(min, x));

/** The Foobot global pollution index (%): 50 where PM2.5, VOC or CO2 reaches its default rule's threshold. */
export function pollutionIndex(pm: number, voc: number, co2: number): number {
  return clamp(100 * Math.max(pm / 71, voc / 1000, (co2 - 400) / 2000, 0), 0, 1000);
}

export class DeviceSim {
  readonly deviceId: string;
  readonly room: RoomProfile;
  private readonly seed: number;
  private readonly index: number;
  private readonly faults: DeviceFaultOptions | false;
  private readonly noise: Random;
  private readonly resends: Random;
  private readonly phase: number;
  private intervalMs: number;
  private air: RoomAir;
  private nextSampleAt: number;
  private readonly plans = new Map<number, DayPlan>();
  private readonly queue: Upload[] = [];
  private buffered: Reading[] = [];

  constructor(o: DeviceSimOptions) {
    this.deviceId = o.deviceId;
    this.seed = o.seed;
    this.index = o.index;
    this.faults = o.faults ?? {};
    this.room = roomProfile(o.seed, o.index, o.kind);
    this.noise = createRandom(mixSeed(o.seed, o.index, 0x6e6f6973));
    this.resends = createRandom(mixSeed(o.seed, o.index, 0x64757073));
    this.phase = createRandom(mixSeed(o.seed, o.index, 0x70686173)).next();
    this.intervalMs = o.intervalMs;
    const warmUp = o.warmUpMs ?? 12 * 3_600_000;
    this.nextSampleAt = this.gridAtOrAfter(o.startMs);
    this.air = advanceAir(restingAir(this.nextSampleAt - warmUp, this.room), this.nextSampleAt, this.room, (t) => this.plansAt(t));
  }

  /** Event time of the next upload. */
  peekSendAt(): number {
    this.fill();
    return this.queue[0]!.sendAt;
  }

  /** The next upload (in event-time order). */
  next(): Upload {
    this.fill();
    return this.queue.shift()!;
  }

  /** Changes the sampling interval from the next sample on (the demo fleet slows down once it reached the wall clock). */
  setIntervalMs(intervalMs: number): void {
    if (intervalMs === this.intervalMs) return;
    this.intervalMs = intervalMs;
    this.nextSampleAt = this.gridAtOrAfter(this.nextSampleAt);
  }

  /** The plans acting at `t`: its day's and the day before's (whose night may run past midnight). */
  plansAt(t: number): DayPlan[] {
    const day = Math.floor(t / DAY_MS);
    return [this.plan(day - 1), this.plan(day)];
  }

  private plan(day: number): DayPlan {
    let p = this.plans.get(day);
    if (p === undefined) {
      p = dayPlan(this.seed, this.index, day, this.room, this.faults === false ? { outagesPerDay: 0 } : this.faults);
      if (this.plans.size > 4) this.plans.delete(Math.min(...this.plans.keys()));
      this.plans.set(day, p);
    }
    return p;
  }

  /** The first sample time ≥ t on this device's grid (a fixed phase within the interval). */
  private gridAtOrAfter(t: number): number {
    const offset = Math.floor(this.phase * this.intervalMs);
    return Math.ceil((t - offset) / this.intervalMs) * this.intervalMs + offset;
  }

  private fill(): void {
    while (this.queue.length === 0) this.sample();
  }

  private sample(): void {
    const t = this.nextSampleAt;
    this.nextSampleAt += this.intervalMs;
    this.air = advanceAir(this.air, t, this.room, (x) => this.plansAt(x));
    const outage = this.plansAt(t).flatMap((p) => p.outages).find((o) => o.from <= t && t < o.to);
    if (outage?.kind === "power") return;
    const reading = this.sense(t);
    if (outage?.kind === "network") {
      this.buffered.push(reading);
      return;
    }
    if (this.buffered.length > 0) {
      const backlog = [...this.buffered, reading];
      this.buffered = [];
      for (let i = 0; i < backlog.length; i += MAX_READINGS_PER_REQUEST) {
        this.queue.push({ deviceId: this.deviceId, sendAt: t, readings: backlog.slice(i, i + MAX_READINGS_PER_REQUEST), kind: "backfill" });
      }
      return;
    }
    const upload: Upload = { deviceId: this.deviceId, sendAt: t, readings: [reading], kind: "live" };
    this.queue.push(upload);
    if (this.faults !== false && this.resends.chance(this.faults.duplicateProbability ?? 0.01)) {
      this.queue.push({ ...upload, sendAt: t + Math.min(30_000, Math.floor(this.intervalMs / 2)), kind: "resend" });
    }
  }

  /** What the sensor reports: the true air plus slow drift and noise, rounded like a Foobot, within the valid ranges. */
  private sense(t: number): Reading {
    const d = this.room.drift;
    const wave = Math.sin((2 * Math.PI * t) / (d.periodDays * DAY_MS) + d.phase);
    const n = this.noise;
    const co2 = clamp(this.air.co2 + d.co2Ppm * wave + n.normal() * (8 + 0.015 * this.air.co2), 350, 40_000);
    const pm = clamp(this.air.pm + n.normal() * (0.4 + 0.06 * this.air.pm), 0, 1000);
    const voc = clamp(this.air.voc + n.normal() * (4 + 0.05 * this.air.voc), 0, 60_000);
    const tmp = clamp(this.air.tmp + d.tmpC * wave + n.normal() * 0.05, -40, 85);
    const hum = clamp(this.air.hum + d.humidity * wave + n.normal() * 0.3, 0, 100);
    return {
      t,
      pm: round(pm, 1),
      co2: Math.round(co2),
      voc: Math.round(voc),
      tmp: round(tmp, 2),
      hum: round(hum, 1),
      allpollu: round(pollutionIndex(pm, voc, co2), 1),
    };
  }
}
