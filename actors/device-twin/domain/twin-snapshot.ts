// The twin's snapshot (the value stored in KV per twin): MessagePack, plain maps, versioned.
//
//   { v: 2, id, s: <stats bytes from encodeStats>, t?: lastT, c: [readings, duplicates, late],
//     p: [lastSeen | null, offline 0|1], r?: rule deviations, e?: event slots, u?: subscriptions,
//     w?: report accumulators, l?: <learned-state bytes from learned/learned-snapshot.ts> }
//
// Version 1 (before the learned state) is the same without `l`; it still decodes, to a twin that has
// learned nothing yet. `l` is left out while nothing is learned.
//
// Sections that hold only defaults (rules, events, subscriptions, reports) are left out, so a twin that never
// had a command or an open event costs its stats bytes plus ~40 bytes. Decoding validates everything
// (rules and subscriptions with the same validators as commands) so a decoded twin is always sound.

import { Packr } from "msgpackr";
import { createEventStates, decodeEventStates, encodeEventStates } from "./events.ts";
import type { EventStates } from "./events.ts";
import { DomainError } from "./errors.ts";
import { createReportState, decodeReportState, encodeReportState, isReportStateEmpty } from "./reports.ts";
import { createLearnedIn, isLearnedEmpty, LEARNED_BYTES, type LearnedState } from "./learned/learned-state.ts";
import { decodeLearned, encodeLearnedTransient, learnedEqual } from "./learned/learned-snapshot.ts";
import { decodeRuleSet, DEFAULT_RULE_SET, encodeRuleSet, isValidId } from "./rules.ts";
import { decodeStats, encodeStatsTransient, releaseStats, RELEASED_STATS, statsEqual } from "./stats.ts";
import { NO_SUBSCRIPTIONS, PROVIDERS, validateSubscription } from "./subscriptions.ts";
import type { TwinState } from "./twin.ts";
import type { Subscription } from "./types.ts";

/** The snapshot format version written by {@link encodeTwin}. */
export const TWIN_SNAPSHOT_VERSION = 2;
/** Older versions {@link decodeTwin} still reads. */
const READABLE_VERSIONS = new Set([1, 2]);

const packr = new Packr({ useRecords: false });
const KEYS = new Set(["v", "id", "s", "t", "c", "p", "r", "e", "u", "w", "l"]);

/** [id, provider (index of a built-in, else its name), target, kinds, ruleIds, channels] and, when it has one, the secret last. */
type EncodedSubscription = [string, number | string, string, string[] | null, string[] | null, string[] | null, string?];

/**
 * The runtime is done with this decoded twin (compacted or passivated: its bytes hold it now): its
 * statistics buffer goes to the next twin created or decoded (stats-layout.ts). The twin keeps an empty
 * stand-in, so a use after release throws at once rather than reading another twin's statistics; a
 * second release does nothing.
 */
export function releaseTwin(state: TwinState): void {
  if (state.stats === RELEASED_STATS) return;
  releaseStats(state.stats);
  state.stats = RELEASED_STATS;
  state.learned = RELEASED_STATS as unknown as LearnedState;
}

/** Serializes a twin; the bytes are a fresh, plain Uint8Array. */
export function encodeTwin(state: TwinState): Uint8Array {
  const snap: Record<string, unknown> = {
    v: TWIN_SNAPSHOT_VERSION,
    id: state.deviceId,
    // a view of the stats writer's buffer: msgpackr copies it into the snapshot right away
    s: encodeStatsTransient(state.stats),
    c: [state.readings, state.duplicates, state.late],
    p: [state.presence.lastSeen ?? null, state.presence.offline ? 1 : 0],
  };
  if (state.lastT !== undefined) snap.t = state.lastT;
  if (state.rules.user.length > 0 || state.rules.deletedDefaults.length > 0) snap.r = encodeRuleSet(state.rules);
  if (state.events.ids.length > 0) snap.e = encodeEventStates(state.events);
  if (state.subscriptions.length > 0) {
    snap.u = state.subscriptions.map((s): EncodedSubscription => {
      const builtin = PROVIDERS.indexOf(s.provider as (typeof PROVIDERS)[number]);
      const e: EncodedSubscription = [s.id, builtin >= 0 ? builtin : s.provider, s.target, s.match.kinds ?? null, s.match.ruleIds ?? null, s.match.channels ?? null];
      if (s.secret !== undefined) e.push(s.secret);
      return e;
    });
  }
  if (!isReportStateEmpty(state.reports)) snap.w = encodeReportState(state.reports);
  if (!isLearnedEmpty(state.learned)) snap.l = encodeLearnedTransient(state.learned); // a view too, copied by msgpackr
  // msgpackr returns a slice of a shared 8 KB slab; copy so the snapshot owns (and retains) only itself.
  return new Uint8Array(packr.pack(snap));
}

const corrupt = (why: string, cause?: unknown): DomainError =>
  new DomainError("SNAPSHOT_CORRUPT", `snapshot cannot be decoded: ${why}`, cause === undefined ? undefined : { cause });

const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/**
 * Restores a twin from {@link encodeTwin}'s bytes. Throws DomainError SNAPSHOT_VERSION for a version
 * this code does not know and SNAPSHOT_CORRUPT for anything else that is not a sound snapshot.
 */
export function decodeTwin(bytes: Uint8Array): TwinState {
  let snap: unknown;
  try {
    snap = packr.unpack(bytes);
  } catch (err) {
    throw corrupt("not MessagePack", err);
  }
  if (typeof snap !== "object" || snap === null || Array.isArray(snap) || snap instanceof Uint8Array) throw corrupt("not a map");
  const m = snap as Record<string, unknown>;
  if (typeof m.v === "number" && !READABLE_VERSIONS.has(m.v)) {
    throw new DomainError("SNAPSHOT_VERSION", `snapshot version ${m.v} is not supported (expected ${TWIN_SNAPSHOT_VERSION})`, { details: { version: m.v } });
  }
  if (typeof m.v !== "number") throw corrupt("no version");
  if (m.v === 1 && m.l !== undefined) throw corrupt("learned state in a version 1 snapshot");
  for (const k of Object.keys(m)) if (!KEYS.has(k)) throw corrupt(`unknown field ${k}`);
  if (!isValidId(m.id)) throw corrupt("bad device id");
  if (!(m.s instanceof Uint8Array)) throw corrupt("no stats section");
  let stats: TwinState["stats"];
  try {
    stats = decodeStats(m.s, LEARNED_BYTES);
  } catch (err) {
    if (err instanceof DomainError) throw err;
    throw corrupt("bad stats section", err);
  }
  const c = m.c;
  if (!Array.isArray(c) || c.length !== 3 || !c.every(isCount)) throw corrupt("bad counters");
  const p = m.p;
  if (!Array.isArray(p) || p.length !== 2 || !(p[0] === null || Number.isFinite(p[0])) || (p[1] !== 0 && p[1] !== 1)) throw corrupt("bad presence");
  if (p[0] === null && p[1] === 1) throw corrupt("offline but never seen");
  if (m.t !== undefined && !Number.isFinite(m.t)) throw corrupt("bad lastT");

  const rules = m.r === undefined ? DEFAULT_RULE_SET : decodeRuleSet(m.r);
  if (rules === undefined) throw corrupt("bad rules");
  const events: EventStates | undefined = m.e === undefined ? createEventStates() : decodeEventStates(m.e, rules.effective);
  if (events === undefined) throw corrupt("bad events");
  const subscriptions = m.u === undefined ? NO_SUBSCRIPTIONS : decodeSubscriptions(m.u);
  const reports = m.w === undefined ? createReportState() : decodeReportState(m.w);
  if (reports === undefined) throw corrupt("bad report accumulators");
  if (m.l !== undefined && !(m.l instanceof Uint8Array)) throw corrupt("bad learned section");
  const learned = m.l === undefined ? createLearnedIn(stats) : decodeLearned(m.l, stats);

  const state: TwinState = {
    deviceId: m.id,
    stats,
    rules,
    events,
    subscriptions,
    reports,
    presence: p[0] === null ? { offline: false } : { lastSeen: p[0] as number, offline: p[1] === 1 },
    learned,
    readings: c[0] as number,
    duplicates: c[1] as number,
    late: c[2] as number,
  };
  if (m.t !== undefined) state.lastT = m.t as number;
  return state;
}

function decodeSubscriptions(x: unknown): Subscription[] {
  if (!Array.isArray(x) || x.length === 0) throw corrupt("bad subscriptions");
  const subs: Subscription[] = [];
  for (const e of x as unknown[]) {
    if (!Array.isArray(e) || (e.length !== 6 && e.length !== 7)) throw corrupt("bad subscription");
    const match: Record<string, unknown> = {};
    if (e[3] !== null) match.kinds = e[3];
    if (e[4] !== null) match.ruleIds = e[4];
    if (e[5] !== null) match.channels = e[5];
    const r = validateSubscription({ id: e[0], provider: typeof e[1] === "string" && !(PROVIDERS as readonly string[]).includes(e[1]) ? e[1] : PROVIDERS[e[1] as number], match, target: e[2], ...(e.length === 7 ? { secret: e[6] } : {}) });
    if (!r.ok || subs.some((s) => s.id === r.value.id)) throw corrupt("bad subscription");
    subs.push(r.value);
  }
  return subs;
}

/** True when two twins hold the same state (for tests and assertions). */
export function twinEqual(a: TwinState, b: TwinState): boolean {
  const { stats: sa, learned: la, ...ra } = a;
  const { stats: sb, learned: lb, ...rb } = b;
  return statsEqual(sa, sb) && learnedEqual(la, lb) && plainEqual(ra, rb);
}

/** Deep equality of plain data; a property holding `undefined` equals an absent one. */
function plainEqual(x: unknown, y: unknown): boolean {
  if (x === y) return true;
  if (typeof x !== "object" || typeof y !== "object" || x === null || y === null) return false;
  if (Array.isArray(x) !== Array.isArray(y)) return false;
  if (Array.isArray(x)) {
    const ya = y as unknown[];
    return x.length === ya.length && x.every((v, i) => plainEqual(v, ya[i]));
  }
  const xo = x as Record<string, unknown>;
  const yo = y as Record<string, unknown>;
  const keys = new Set([...Object.keys(xo), ...Object.keys(yo)]);
  for (const k of keys) if (!plainEqual(xo[k], yo[k])) return false;
  return true;
}
