// The air of one room over time: CO2 from the people in it against ventilation, PM2.5 from cooking
// against ventilation and deposition, VOC from cleaning and people against ventilation and sorption,
// temperature and humidity relaxing toward targets set by heating, people, cooking and open windows.
// Each quantity follows a first-order balance dC/dt = S − L·(C − C∞), integrated exactly over steps of
// at most a minute with the sources held constant.
import { DAY_MS, type DayPlan, type Interval } from "./day-plan.ts";
import type { RoomProfile } from "./rooms.ts";

const HOUR_MS = 3_600_000;
const MAX_STEP_MS = 60_000;
/** CO2 one person breathes out at rest (litres per hour). */
const CO2_LITRES_PER_PERSON_HOUR = 18;
/** PM2.5 deposition and VOC sorption rates (per hour). */
const PM_DEPOSITION_PER_HOUR = 0.4;
const VOC_SORPTION_PER_HOUR = 0.3;

/** The room's true air, before the sensor's drift and noise. */
export interface RoomAir {
  t: number;
  co2: number;
  pm: number;
  voc: number;
  tmp: number;
  hum: number;
}

/** The sources acting at one moment, from the day plans. */
interface Sources {
  persons: number;
  pmPerHour: number;
  vocPerHour: number;
  airChangesPerHour: number;
  windowOpen: boolean;
  cooking: boolean;
}

const during = (x: Interval, t: number) => x.from <= t && t < x.to;

function sourcesAt(t: number, room: RoomProfile, plans: readonly DayPlan[]): Sources {
  const s: Sources = { persons: 0, pmPerHour: 0, vocPerHour: 0, airChangesPerHour: room.airChangesPerHour, windowOpen: false, cooking: false };
  for (const p of plans) {
    for (const o of p.occupancy) if (during(o, t)) s.persons += o.persons;
    for (const c of p.cooking) {
      if (!during(c, t)) continue;
      s.pmPerHour += c.pmPerHour;
      s.cooking = true;
    }
    for (const c of p.cleaning) if (during(c, t)) s.vocPerHour += c.vocPerHour;
    for (const w of p.windows) {
      if (!during(w, t)) continue;
      s.airChangesPerHour = Math.max(s.airChangesPerHour, w.airChangesPerHour);
      s.windowOpen = true;
    }
  }
  return s;
}

/** Outdoor temperature (°C): a season over the year and a day/night swing. */
export function outdoorTemperature(t: number): number {
  const dayOfYear = (t / DAY_MS) % 365.25;
  const hour = (t % DAY_MS) / HOUR_MS;
  return 10 - 9 * Math.cos((2 * Math.PI * (dayOfYear - 20)) / 365.25) + 4 * Math.sin((2 * Math.PI * (hour - 9)) / 24);
}

/** Whether the heating runs at its day setpoint at `t`. */
function heatingDay(t: number, room: RoomProfile): boolean {
  const hour = (t % DAY_MS) / HOUR_MS;
  if (room.kind === "office" || room.kind === "classroom") {
    const dow = (Math.floor(t / DAY_MS) + 4) % 7;
    return dow !== 0 && dow !== 6 && hour >= 6.5 && hour < 18;
  }
  return hour >= 6 && hour < 22.5;
}

/** Relaxes `x` toward `target` at `rate` per hour over `hours` (exact for constant rate and target). */
const relax = (x: number, target: number, rate: number, hours: number) => target + (x - target) * Math.exp(-rate * hours);

/** The air of an empty, closed room at `t`: where a run starts before its warm-up. */
export function restingAir(t: number, room: RoomProfile): RoomAir {
  return {
    t,
    co2: room.outdoorCo2Ppm + 30,
    pm: room.outdoorPm * 0.6,
    voc: room.baseVocPpb,
    tmp: room.setpointC - (heatingDay(t, room) ? 0 : room.setbackC / 2),
    hum: room.baseHumidity,
  };
}

/** The air at `to`, stepping from `air` (whose `t` ≤ `to`) with the plans covering that span. */
export function advanceAir(air: RoomAir, to: number, room: RoomProfile, plansAt: (t: number) => readonly DayPlan[]): RoomAir {
  let { t, co2, pm, voc, tmp, hum } = air;
  while (t < to) {
    const step = Math.min(MAX_STEP_MS, to - t);
    const hours = step / HOUR_MS;
    const s = sourcesAt(t + step / 2, room, plansAt(t));
    const ach = s.airChangesPerHour;

    const co2PerHour = (s.persons * CO2_LITRES_PER_PERSON_HOUR * 1000) / room.volumeM3; // ppm per hour
    co2 = relax(co2, room.outdoorCo2Ppm + co2PerHour / ach, ach, hours);

    const pmLoss = ach + PM_DEPOSITION_PER_HOUR;
    pm = relax(pm, (ach * room.outdoorPm * 0.7 + s.pmPerHour) / pmLoss, pmLoss, hours);

    const vocLoss = ach + VOC_SORPTION_PER_HOUR;
    const peopleVoc = (s.persons * 900) / room.volumeM3; // bioeffluents, ppb per hour
    voc = relax(voc, (room.baseVocPpb * (room.airChangesPerHour + VOC_SORPTION_PER_HOUR) + peopleVoc + s.vocPerHour) / vocLoss, vocLoss, hours);

    const outdoor = outdoorTemperature(t);
    const heated = room.setpointC - (heatingDay(t, room) ? 0 : room.setbackC) + 0.2 * Math.max(0, outdoor - 16);
    const tmpTarget = s.windowOpen ? (heated + outdoor) / 2 : heated + Math.min(2.5, (s.persons * 8) / room.volumeM3) + (s.cooking ? 1.5 : 0);
    tmp = relax(tmp, tmpTarget, s.windowOpen ? 1.2 : 0.7, hours);

    const season = 6 * Math.sin((2 * Math.PI * ((t / DAY_MS) % 365.25 - 110)) / 365.25);
    const humTarget = s.windowOpen ? 55 + season : room.baseHumidity + season + Math.min(15, (s.persons * 60) / room.volumeM3) + (s.cooking ? 12 : 0);
    hum = relax(hum, humTarget, s.windowOpen ? 2.5 : 1, hours);

    t += step;
  }
  return { t, co2, pm, voc, tmp, hum };
}
