// Loader of the UCI Occupancy Detection CSV (data/uci-occupancy, CC BY 4.0, see its README) as twin
// readings, for tests and benchmarks: Temperature → tmp, Humidity → hum, CO2 → co2; the timestamp read as UTC.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Reading } from "../../actors/device-twin/domain/types.ts";

/** The training file (8,143 rows, 4–10 Feb 2015) and the test file (2,665 rows, 2–4 Feb 2015) in the repo. */
export const UCI_TRAINING = fileURLToPath(new URL("../../data/uci-occupancy/datatraining.txt", import.meta.url));
export const UCI_TEST = fileURLToPath(new URL("../../data/uci-occupancy/datatest.txt", import.meta.url));

/**
 * Reads one UCI occupancy file (`"id","YYYY-MM-DD HH:MM:SS",Temperature,Humidity,Light,CO2,…` after a
 * header line) into readings in file order. Throws on a line it cannot parse, naming it.
 */
export function loadUciReadings(path: string = UCI_TRAINING): Reading[] {
  return loadUciRows(path).map((row) => row.reading);
}

/** One UCI row: the reading and the ground truth (Occupancy column). */
export interface UciRow {
  reading: Reading;
  occupied: boolean;
}

/** As {@link loadUciReadings}, with each row's Occupancy label. */
export function loadUciRows(path: string = UCI_TRAINING): UciRow[] {
  const lines = readFileSync(path, "utf8").split(/\r?\n/).filter((l) => l.trim() !== "");
  const header = (lines.shift() ?? "").replace(/"/g, "").split(",");
  const col = (name: string): number => {
    // data rows carry a leading row id the header does not name
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`${path}: no column ${name}`);
    return i + 1;
  };
  const [date, tmp, hum, co2, occ] = [col("date"), col("Temperature"), col("Humidity"), col("CO2"), col("Occupancy")];
  return lines.map((line, i) => {
    const f = line.replace(/"/g, "").split(",");
    const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(f[date] ?? "");
    const r: Reading = {
      t: m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN,
      tmp: Number(f[tmp]),
      hum: Number(f[hum]),
      co2: Number(f[co2]),
    };
    const label = f[occ];
    if (!Number.isFinite(r.t) || ![r.tmp, r.hum, r.co2].every(Number.isFinite) || (label !== "0" && label !== "1")) {
      throw new Error(`${path}:${i + 2}: cannot parse ${JSON.stringify(line)}`);
    }
    return { reading: r, occupied: label === "1" };
  });
}
