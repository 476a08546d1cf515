// Summarises a V8 `.cpuprofile` (node --cpu-prof): time by area (runtime, twin domain, nats.js, msgpackr,
// prom-client, GC, idle…), the top functions by self time, and the runtime's and domain's functions by
// inclusive time — enough to say where a benchmark's time goes without opening DevTools.
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * A stretch of a profile by the clock: V8 stamps samples in µs of the monotonic clock, the one
 * `process.hrtime` reads in any process on the machine, so a bench can cut its children's profiles at
 * the moments it noted itself (`monotonicUs()`).
 */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

/** Now, in the clock of V8's CPU profiles (µs). */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** The area a function belongs to, from its script URL. */
export function area(cf: CallFrame): string {
  const u = cf.url;
  if (u === "") return cf.functionName.startsWith("(") ? cf.functionName : "native";
  if (u.includes("/node_modules/@nats-io/")) return `nats.js ${u.split("/node_modules/@nats-io/")[1]!.split("/")[0]}`;
  if (u.includes("/node_modules/")) return u.split("/node_modules/")[1]!.split("/")[0]!;
  if (u.startsWith("node:")) return "node internals";
  if (u.includes("/runtime/")) return "airtwin runtime";
  if (u.includes("/actors/")) return "twin domain";
  if (u.includes("/bench/")) return "bench";
  return "other";
}

function label(cf: CallFrame): string {
  const file = cf.url.replace(/^file:\/\/.*?\/(node_modules\/|(?=runtime\/|actors\/|bench\/))/, "").replace(/^node:/, "node:");
  return `${cf.functionName || "(anonymous)"} ${file}${cf.url ? `:${cf.lineNumber + 1}` : ""}`;
}

export interface ProfileSummary {
  totalMs: number;
  areas: Array<{ area: string; ms: number; pct: number }>;
  selfTop: Array<{ fn: string; ms: number; pct: number }>;
  inclusiveTop: Array<{ fn: string; ms: number; pct: number }>;
}

export function analyzeProfile(path: string, top = 15, window?: ProfileWindow): ProfileSummary {
  const p = JSON.parse(readFileSync(path, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) continue;
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(p.samples[i]!)!;
    total += dt;
    const key = label(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + dt);
    const a = area(node.callFrame);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id)!.callFrame;
      const ar = area(cf);
      if (ar !== "airtwin runtime" && ar !== "twin domain") continue;
      const k = label(cf);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  }
  const rank = (m: Map<string, number>, n: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, ms]) => ({ k, ms: Math.round(ms), pct: Math.round((1000 * ms) / total) / 10 }));
  return {
    totalMs: Math.round(total),
    areas: rank(areas, 30).map(({ k, ms, pct }) => ({ area: k, ms, pct })),
    selfTop: rank(self, top).map(({ k, ms, pct }) => ({ fn: k, ms, pct })),
    inclusiveTop: rank(inclusive, top).map(({ k, ms, pct }) => ({ fn: k, ms, pct })),
  };
}

export function summarizeProfile(path: string, top = 15, window?: ProfileWindow): string {
  const s = analyzeProfile(path, top, window);
  const lines = [`total ${s.totalMs} ms sampled`, "by area:"];
  for (const a of s.areas) lines.push(`  ${String(a.pct).padStart(5)}%  ${a.area}`);
  lines.push("top functions by self time:");
  for (const f of s.selfTop) lines.push(`  ${String(f.pct).padStart(5)}%  ${f.fn}`);
  lines.push("runtime/domain functions by inclusive time:");
  for (const f of s.inclusiveTop) lines.push(`  ${String(f.pct).padStart(5)}%  ${f.fn}`);
  return lines.join("\n");
}
