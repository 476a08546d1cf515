// What happens in a room on one UTC day: who is there, meals cooked, cleaning, windows opened, and the
// device's own outage. Drawn from (seed, device, day) alone, so any run that reaches a day sees the
// same plan. Times are UTC; a plan's intervals may run past midnight into the next day.
import { createRandom, mixSeed, type Random } from "./random.ts";
import type { RoomProfile } from "./rooms.ts";

export const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const MIN_MS = 60_000;

export interface Interval {
  from: number;
  to: number;
}

/** The device loses power (nothing measured) or its network (readings kept and uploaded afterwards). */
export type OutageKind = "power" | "network";

export interface DayPlan {
  day: number;
  occupancy: Array<Interval & { persons: number }>;
  /** Cooking: PM2.5 source (µg/m³ per hour in this room), plus heat and moisture. */
  cooking: Array<Interval & { pmPerHour: number }>;
  /** Cleaning products: VOC source (ppb per hour). */
  cleaning: Array<Interval & { vocPerHour: number }>;
  /** Open windows: air changes per hour while open. */
  windows: Array<Interval & { airChangesPerHour: number }>;
  outages: Array<Interval & { kind: OutageKind }>;
}

/** Fault rates of a fleet's devices. */
export interface FaultOptions {
  /** Expected outages per device per day. Default 0.15. */
  outagesPerDay?: number;
  /** Share of outages that lose the network only (readings backfilled afterwards). Default 0.6. */
  networkShare?: number;
}

const at = (day: number, hours: number) => day * DAY_MS + Math.round(hours * HOUR_MS);
const jitter = (r: Random, minutes: number) => (r.next() * 2 - 1) * (minutes / 60);
const isWeekend = (day: number) => {
  const dow = (day + 4) % 7; // 1970-01-01 was a Thursday; 0 = Sunday
  return dow === 0 || dow === 6;
};

export function dayPlan(seed: number, index: number, day: number, room: RoomProfile, faults: FaultOptions = {}): DayPlan {
  const r = createRandom(mixSeed(seed, index, day, 0x706c616e));
  const plan: DayPlan = { day, occupancy: [], cooking: [], cleaning: [], windows: [], outages: [] };
  const weekend = isWeekend(day);
  const persons = (max: number) => 1 + r.int(Math.max(1, max));
  const stay = (fromH: number, toH: number, n: number) => {
    if (toH > fromH) plan.occupancy.push({ from: at(day, fromH), to: at(day, toH), persons: n });
  };
  const cook = (startH: number, minutes: number, intensity: number) => {
    const from = at(day, startH);
    plan.cooking.push({ from, to: from + minutes * MIN_MS, pmPerHour: (intensity * 5000) / room.volumeM3 });
  };
  const airing = (startH: number, minutes: number) => {
    const from = at(day, startH);
    plan.windows.push({ from, to: from + minutes * MIN_MS, airChangesPerHour: r.between(3, 8) });
  };

  switch (room.kind) {
    case "bedroom": {
      const sleep = 22.5 + jitter(r, 50) + (weekend ? 0.7 : 0);
      const wake = 24 + 6.8 + jitter(r, 30) + (weekend ? 1.5 : 0);
      stay(sleep, wake, Math.min(room.maxPersons, persons(2)));
      if (r.chance(0.5)) airing(wake - 24 + 0.3, 10 + r.int(20));
      break;
    }
    case "kitchen": {
      const breakfast = 7 + jitter(r, 40) + (weekend ? 1.5 : 0);
      stay(breakfast, breakfast + 0.5 + r.next() * 0.4, persons(room.maxPersons));
      if (room.cooks && r.chance(0.3)) cook(breakfast + 0.1, 10 + r.int(10), r.between(0.3, 1));
      if (weekend || r.chance(0.2)) {
        const lunch = 12.3 + jitter(r, 40);
        stay(lunch, lunch + 1, persons(room.maxPersons));
        if (r.chance(0.7)) cook(lunch, 20 + r.int(25), r.between(0.5, 2));
      }
      const dinner = 18.3 + jitter(r, 60);
      stay(dinner, dinner + 1.2 + r.next() * 0.8, persons(room.maxPersons));
      if (r.chance(0.85)) cook(dinner + 0.1, 20 + r.int(40), r.between(0.6, 3.5));
      if (r.chance(0.4)) airing(dinner + 0.9, 10 + r.int(25));
      break;
    }
    case "living": {
      if (weekend) stay(10 + jitter(r, 60), 13 + jitter(r, 60), persons(room.maxPersons));
      if (weekend || r.chance(0.3)) stay(14.5 + jitter(r, 60), 17.5 + jitter(r, 60), persons(room.maxPersons));
      const evening = 19 + jitter(r, 45);
      stay(evening, 22.7 + jitter(r, 50), persons(room.maxPersons));
      if (room.cooks && r.chance(0.7)) cook(18 + jitter(r, 40), 25 + r.int(30), r.between(0.4, 2));
      if (r.chance(0.25)) airing(9 + jitter(r, 90), 15 + r.int(30));
      break;
    }
    case "office": {
      if (weekend) break;
      const start = 8.4 + jitter(r, 40);
      const lunch = 12 + jitter(r, 20);
      const n = Math.max(1, Math.round(room.maxPersons * r.between(0.5, 1)));
      stay(start, lunch, n);
      stay(lunch + 0.8 + r.next() * 0.3, 17.3 + jitter(r, 50), n);
      if (r.chance(0.3)) airing(lunch + 0.1, 15 + r.int(15));
      break;
    }
    case "classroom": {
      if (weekend) break;
      const n = Math.max(10, Math.round(room.maxPersons * r.between(0.75, 1)));
      stay(8 + jitter(r, 10), 9.9, n);
      stay(10.1, 12 + jitter(r, 10), n);
      stay(13 + jitter(r, 10), 15.5 + jitter(r, 20), n);
      if (r.chance(0.6)) airing(9.92, 10);
      if (r.chance(0.4)) airing(12.1, 30);
      break;
    }
  }

  if (r.chance(room.cleaningPerDay)) {
    const from = at(day, r.between(9, 20));
    const minutes = 15 + r.int(40);
    plan.cleaning.push({ from, to: from + minutes * MIN_MS, vocPerHour: (r.between(300, 1600) * 60) / minutes });
  }

  const outagesPerDay = faults.outagesPerDay ?? 0.15;
  if (outagesPerDay > 0 && r.chance(Math.min(1, outagesPerDay))) {
    const from = at(day, r.between(0, 24));
    // mostly short Wi-Fi hiccups, sometimes hours (a router restarted, someone unplugged it)
    const minutes = r.chance(0.7) ? 10 + r.int(50) : 60 + r.int(180);
    plan.outages.push({ from, to: from + minutes * MIN_MS, kind: r.chance(faults.networkShare ?? 0.6) ? "network" : "power" });
  }
  return plan;
}
