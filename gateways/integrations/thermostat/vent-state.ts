// What each thermostat's ventilation should be, kept in a NATS KV bucket (`<prefix>-thermostat`, one
// JSON record per thermostat) so every `airtwin integrations` process agrees and a restart forgets
// nothing. A record holds the reasons the ventilation is on ("holds": one per device and rule, from an
// event's start or a forecast), the mode last set, the call still owed to the partner, and the events
// that already ended (so a late repeat of their start changes nothing). Writes are compare-and-set on
// the entry's revision: of two processes that see the same alert, one wins and makes the call.
import type { KV } from "@nats-io/kv";
import type { VentMode } from "./partner-client.ts";

/** One reason to ventilate: `[key, eventId | null (a forecast), expiresAt | null]`; key `<deviceId>:<ruleId>`. */
export type Hold = [string, string | null, number | null];

export interface VentRecord {
  mode: VentMode;
  holds: Hold[];
  /** A mode decided but not yet confirmed by the partner. */
  owed?: VentMode;
  /** Ids of events that ended (newest last, at most ENDED_KEPT). */
  ended: string[];
}

const ENDED_KEPT = 64;
const fresh = (): VentRecord => ({ mode: "auto", holds: [], ended: [] });

/** Key of a thermostat's record (KV keys allow few characters: base64url of the id). */
export const recordKey = (thermostatId: string): string => `t.${Buffer.from(thermostatId).toString("base64url") || "_"}`;

/** A change to one record: returns false when it changes nothing. */
export type Change = (rec: VentRecord, now: number) => boolean;

export const hold = (key: string, eventId: string | null, expiresAt: number | null): Change => (rec) => {
  if (eventId !== null && rec.ended.includes(eventId)) return false; // a repeat of a finished event's start
  const i = rec.holds.findIndex((h) => h[0] === key);
  if (i >= 0) {
    const h = rec.holds[i] as Hold;
    // an event taking over its forecast's hold keeps the ventilation on, no call
    if (eventId !== null && h[1] === null) {
      rec.holds[i] = [key, eventId, null];
      return true;
    }
    if (eventId === null && h[1] === null && expiresAt !== null && (h[2] ?? 0) < expiresAt) {
      rec.holds[i] = [key, null, expiresAt];
      return true;
    }
    return false;
  }
  rec.holds.push([key, eventId, expiresAt]);
  return true;
};

export const release = (key: string, eventId: string): Change => (rec) => {
  const before = rec.holds.length;
  rec.holds = rec.holds.filter((h) => !(h[0] === key && (h[1] === eventId || h[1] === null)));
  const wasNew = !rec.ended.includes(eventId);
  if (wasNew) rec.ended = rec.ended.concat(eventId).slice(-ENDED_KEPT);
  return rec.holds.length !== before || wasNew;
};

/** Drops forecast holds past their expiry (the sweep). */
export const expire: Change = (rec, now) => {
  const before = rec.holds.length;
  rec.holds = rec.holds.filter((h) => h[2] === null || h[2] > now);
  return rec.holds.length !== before;
};

export class VentState {
  constructor(private readonly kv: KV) {}

  /**
   * Applies a change (retrying on a concurrent write) and decides the mode: on while any hold is left.
   * Returns the mode a call must set now (this write made it owed, or an earlier one left it owed), or
   * undefined when the partner is already in the right mode.
   */
  async apply(thermostatId: string, change: Change, now = Date.now()): Promise<VentMode | undefined> {
    const key = recordKey(thermostatId);
    for (;;) {
      const entry = await this.kv.get(key);
      const exists = entry !== null && entry.operation === "PUT";
      const rec: VentRecord = exists ? (entry.json() as VentRecord) : fresh();
      const changed = change(rec, now);
      const wanted: VentMode = rec.holds.some((h) => h[2] === null || h[2] > now) ? "on" : "auto";
      if (wanted !== rec.mode) {
        rec.mode = wanted;
        rec.owed = wanted;
      } else if (!changed) {
        return rec.owed;
      }
      try {
        if (exists) await this.kv.update(key, JSON.stringify(rec), entry.revision);
        else await this.kv.create(key, JSON.stringify(rec));
        return rec.owed;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
  }

  /** Records that the partner confirmed `mode` (clears it as owed unless a newer decision replaced it). */
  async settled(thermostatId: string, mode: VentMode): Promise<void> {
    const key = recordKey(thermostatId);
    for (;;) {
      const entry = await this.kv.get(key);
      if (entry === null || entry.operation !== "PUT") return;
      const rec = entry.json() as VentRecord;
      if (rec.owed !== mode) return;
      delete rec.owed;
      try {
        await this.kv.update(key, JSON.stringify(rec), entry.revision);
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
  }

  /** Every thermostat with a record (the sweep walks them). */
  async thermostats(): Promise<string[]> {
    const out: string[] = [];
    for await (const k of await this.kv.keys("t.>")) out.push(Buffer.from(k.slice(2), "base64url").toString());
    return out;
  }

  async record(thermostatId: string): Promise<VentRecord | undefined> {
    const entry = await this.kv.get(recordKey(thermostatId));
    return entry === null || entry.operation !== "PUT" ? undefined : (entry.json() as VentRecord);
  }
}

function isConflict(err: unknown): boolean {
  const e = err as { message?: string; api_error?: { err_code?: number } };
  return e?.api_error?.err_code === 10071 || /wrong last sequence|key exists/i.test(e?.message ?? "");
}
