// The device page's history: a week of hourly or a month of daily buckets from GET …/aggregates (the
// archive's rollups before the twin's window, the twin's within it), and what the answer's `coverage`
// says: the archive absent or behind, ranges nobody could answer for, where the twin's part begins.
import { api, ApiError } from "./api.js";
import { historyChart } from "./chart.js";
import { CHANNELS, NAMES, h, num, time } from "./format.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/**
 * Fills `history` (a panel) for the device at `path`. `view()` is the twin's current view, `endOf()` the
 * end of its event time, `archiveState()` what the archive's last answer said. Returns `destroy()`.
 */
export function mountHistory(history, { path, view: currentView, endOf, archiveState }) {
  const view = currentView();
  const archive = archiveState();
  /** Buckets of every channel in [fromMs, toMs), following the cursor; the last answer's coverage. */
  async function aggregatesWindow(resolution, fromMs, toMs) {
    const channels = {};
    let cursor;
    let coverage;
    for (let page = 0; page < 20; page++) {
      const q = new URLSearchParams({ resolution, from: String(fromMs), to: String(toMs), ...(cursor ? { cursor } : {}) });
      const r = await api(`${path}/aggregates?${q}`);
      for (const [ch, buckets] of Object.entries(r.channels ?? {})) (channels[ch] ??= []).push(...buckets);
      coverage = r.coverage ?? coverage;
      if (!r.next) break;
      cursor = r.next;
    }
    return { channels, coverage };
  }

  /** What the page says about where the history came from and what is missing. */
  function coverageNotes(coverage, period) {
    const notes = [];
    const state = coverage?.archive ?? archive;
    if (state === "absent") {
      notes.push(
        h(
          "p.warn",
          { id: "history-no-archive" },
          `The archive is not running behind this gateway: this shows only what the twin holds (24 hourly and 7 daily buckets). Run \`airtwin archive\` for ${period === "week" ? "a week of hours" : "a month of days"}.`,
        ),
      );
    } else if (state === "behind") {
      const lag = coverage?.archiveLag ?? 0;
      // a few messages in flight are normal; thousands mean Postgres is slow or down
      notes.push(
        h(
          lag >= 1000 ? "p.warn" : "p.muted",
          { id: "history-archive-behind" },
          `The archive has ${num(lag, 0)} message${lag === 1 ? "" : "s"} still to write: the newest of its part may be missing.`,
        ),
      );
    }
    const gaps = coverage?.uncovered ?? [];
    if (gaps.length > 0 && state !== "absent") notes.push(h("p.warn", { id: "history-coverage" }, `Not covered: ${gaps.map((g) => `${time(g.from)} – ${time(g.to)}`).join(", ")}`));
    if (coverage?.twinFrom !== undefined && state !== "absent") notes.push(h("p.muted", {}, `From ${time(coverage.twinFrom)} on from the twin, before that from the archive.`));
    return notes;
  }

  function renderHistory() {
    const out = h("div", { id: "history-out" });
    const channel = h("select", { id: "history-channel" }, ...CHANNELS.filter((c) => view.channels[c]).map((c) => h("option", { value: c }, NAMES[c])));
    let chart;
    let last = "week";
    const show = async (period) => {
      last = period;
      const end = endOf();
      const resolution = period === "week" ? "hour" : "day";
      const from = end - (period === "week" ? 7 : 30) * DAY_MS;
      out.replaceChildren(h("p.muted", {}, "loading…"));
      try {
        const { channels, coverage } = await aggregatesWindow(resolution, from, end + HOUR_MS);
        const rows = (channels[channel.value] ?? []).slice().sort((a, b) => a.start - b.start);
        chart?.destroy();
        const box = h("div.chart");
        const first = rows[0]?.start;
        out.replaceChildren(
          ...coverageNotes(coverage, period),
          h("p.muted", {}, rows.length === 0 ? "No buckets in this range." : `${rows.length} ${resolution === "hour" ? "hours" : "days"} from ${time(first)}`),
          box,
        );
        if (rows.length > 0) chart = historyChart(box, channel.value, rows, from, end + HOUR_MS);
      } catch (err) {
        out.replaceChildren(h("p.error", {}, `History unavailable: ${err instanceof ApiError ? err.describe() : err.message}`));
      }
    };
    channel.addEventListener("change", () => show(last));
    history.replaceChildren(
      h("h2", {}, "History"),
      h("div.row", {}, channel, h("button", { id: "history-week", onclick: () => show("week") }, "Week"), h("button", { id: "history-month", onclick: () => show("month") }, "Month")),
      out,
    );
    return () => chart?.destroy();
  }

  return renderHistory();
}
