// What a soak run leaves behind: the samples as CSV, a self-contained HTML chart of them (uPlot and
// the data embedded), and the steady-state check — no series may keep growing once warmed up: the
// last third of the run is compared with the middle third (the first third is the warm-up).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

export type Row = Record<string, number>;

export function toCsv(columns: readonly string[], rows: readonly Row[]): string {
  const fmt = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "" : String(Math.round(v * 1000) / 1000));
  return `${columns.join(",")}\n${rows.map((r) => columns.map((c) => fmt(r[c])).join(",")).join("\n")}\n`;
}

const median = (xs: readonly number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!;
};

/** How a series may grow between the middle and the last third before it counts as growth. */
export interface GrowthRule {
  /** Columns ending with this suffix. */
  suffix: string;
  /** Allowed ratio last / middle. */
  ratio: number;
  /** Growth below this absolute amount is noise whatever the ratio. */
  floor: number;
}

export const GROWTH_RULES: readonly GrowthRule[] = [
  { suffix: "_heap_mb", ratio: 1.25, floor: 24 },
  { suffix: "_rss_mb", ratio: 1.25, floor: 48 },
  { suffix: "_lag", ratio: 3, floor: 2000 },
  { suffix: "_p99_ms", ratio: 3, floor: 200 },
];

export interface Verdict {
  column: string;
  middle: number;
  last: number;
  grew: boolean;
}

/** Medians of the middle and last thirds of each governed column, and whether it grew past its rule. */
export function steadyState(columns: readonly string[], rows: readonly Row[]): Verdict[] {
  const third = Math.floor(rows.length / 3);
  const out: Verdict[] = [];
  for (const column of columns) {
    const rule = GROWTH_RULES.find((r) => column.endsWith(r.suffix));
    if (rule === undefined || third === 0) continue;
    const middle = median(rows.slice(third, 2 * third).map((r) => r[column]!));
    const last = median(rows.slice(2 * third).map((r) => r[column]!));
    const grew = Number.isFinite(middle) && Number.isFinite(last) && last > middle * rule.ratio && last - middle > rule.floor;
    out.push({ column, middle, last, grew });
  }
  return out;
}

/** Chart groups: a title and the column suffix (or name) whose series it draws. */
const GROUPS: ReadonlyArray<[string, (c: string) => boolean]> = [
  ["Heap used (MB)", (c) => c.endsWith("_heap_mb")],
  ["RSS (MB)", (c) => c.endsWith("_rss_mb")],
  ["CPU (cores)", (c) => c.endsWith("_cpu")],
  ["Lag (messages)", (c) => c.endsWith("_lag")],
  ["Latency (ms)", (c) => c.endsWith("_ms")],
  ["Readings accepted per second", (c) => c === "accepted_per_s"],
];

export function chartHtml(title: string, columns: readonly string[], rows: readonly Row[], notes: readonly string[]): string {
  const uplotDir = dirname(createRequire(import.meta.url).resolve("uplot"));
  const js = readFileSync(join(uplotDir, "uPlot.iife.min.js"), "utf8");
  const css = readFileSync(join(uplotDir, "uPlot.min.css"), "utf8");
  const charts = GROUPS.map(([name, pick]) => ({ name, series: columns.filter(pick) })).filter((g) => g.series.length > 0);
  const data = Object.fromEntries(columns.map((c) => [c, rows.map((r) => (Number.isFinite(r[c]) ? r[c] : null))]));
  const esc = (s: string) => s.replace(/[<>&]/g, (ch) => `&#${ch.charCodeAt(0)};`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>${css} body{font:14px sans-serif;margin:1em}</style></head><body>
<h1>${esc(title)}</h1><ul>${notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul><div id="charts"></div>
<script>${js}</script>
<script>
const data = ${JSON.stringify(data)};
const charts = ${JSON.stringify(charts)};
const colors = ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
for (const c of charts) {
  const h = document.createElement("h2"); h.textContent = c.name; document.getElementById("charts").append(h);
  const el = document.createElement("div"); document.getElementById("charts").append(el);
  new uPlot({ width: 1000, height: 260, scales: { x: { time: false } }, axes: [{ label: "seconds" }, {}],
    series: [{ label: "t (s)" }, ...c.series.map((s, i) => ({ label: s, stroke: colors[i % colors.length] }))] },
    [data.t_s, ...c.series.map((s) => data[s])], el);
}
</script></body></html>
`;
}
