// Kinds of rooms a simulated monitor stands in, and the physical constants of one room: a device's
// profile is its kind's ranges, drawn once from the device's seed.
import { createRandom, mixSeed } from "./random.ts";

export const ROOM_KINDS = ["kitchen", "living", "bedroom", "office", "classroom"] as const;
export type RoomKind = (typeof ROOM_KINDS)[number];

/** One room's constants (drawn per device). */
export interface RoomProfile {
  kind: RoomKind;
  /** Air volume (m³): CO2 from one person raises a small room faster. */
  volumeM3: number;
  /** Air changes per hour with windows closed (infiltration and mechanical ventilation). */
  airChangesPerHour: number;
  /** Most people in the room at once. */
  maxPersons: number;
  /** Outdoor CO2 (ppm) and PM2.5 (µg/m³) the room's air is exchanged with. */
  outdoorCo2Ppm: number;
  outdoorPm: number;
  /** VOC level the building's materials alone keep (ppb). */
  baseVocPpb: number;
  /** Heating setpoint by day (°C) and its night setback (°C below). */
  setpointC: number;
  setbackC: number;
  /** Relative humidity without people or cooking (%). */
  baseHumidity: number;
  /** Whether meals are cooked here (PM spikes). */
  cooks: boolean;
  /** Probability a day has a cleaning episode (VOC). */
  cleaningPerDay: number;
  /** The sensor's slow drift: amplitudes and period (tmp °C, hum %, eCO2 ppm; days). */
  drift: { tmpC: number; humidity: number; co2Ppm: number; periodDays: number; phase: number };
}

/** Kind-specific ranges; each device draws its values inside them. */
const KINDS: Record<RoomKind, { volume: [number, number]; ach: [number, number]; persons: [number, number]; cooks: boolean; cleaning: number }> = {
  kitchen: { volume: [25, 45], ach: [0.6, 1.4], persons: [1, 3], cooks: true, cleaning: 0.35 },
  living: { volume: [45, 90], ach: [0.4, 1.0], persons: [2, 5], cooks: false, cleaning: 0.25 },
  bedroom: { volume: [25, 40], ach: [0.25, 0.6], persons: [1, 2], cooks: false, cleaning: 0.1 },
  office: { volume: [60, 150], ach: [0.8, 2.0], persons: [3, 10], cooks: false, cleaning: 0.2 },
  classroom: { volume: [160, 220], ach: [0.8, 2.5], persons: [18, 30], cooks: false, cleaning: 0.15 },
};

/** The profile of device number `index` of a fleet seeded `seed`; `kind` defaults to one drawn from the seed. */
export function roomProfile(seed: number, index: number, kind?: RoomKind): RoomProfile {
  const r = createRandom(mixSeed(seed, index, 0x726f6f6d));
  const k = kind ?? ROOM_KINDS[r.int(ROOM_KINDS.length)]!;
  const spec = KINDS[k];
  return {
    kind: k,
    volumeM3: r.between(...spec.volume),
    airChangesPerHour: r.between(...spec.ach),
    maxPersons: spec.persons[0] + r.int(spec.persons[1] - spec.persons[0] + 1),
    outdoorCo2Ppm: r.between(405, 440),
    outdoorPm: r.between(3, 14),
    baseVocPpb: r.between(80, 220),
    setpointC: r.between(19.5, 22.5),
    setbackC: k === "office" || k === "classroom" ? r.between(2.5, 4) : r.between(1, 3),
    baseHumidity: r.between(33, 50),
    cooks: spec.cooks || (k === "living" && r.chance(0.3)),
    cleaningPerDay: spec.cleaning,
    drift: {
      tmpC: r.between(0.1, 0.5),
      humidity: r.between(0.5, 3),
      co2Ppm: r.between(20, 120),
      periodDays: r.between(12, 45),
      phase: r.between(0, 2 * Math.PI),
    },
  };
}
