// The device page: current values, a 24-hour chart per channel with the rule thresholds and events,
// occupancy (when the twin learns it), calibration, rules and subscriptions (add/delete), recent alerts
// live, and history from the archive (a week, a month). Time is the device's event time: a chart ends
// at its latest reading, which may run ahead of the wall clock (simulated fleets).
import { api, ApiError, command, follow } from "./api.js";
import { channelChart } from "./chart.js";
import { deviceSettings } from "./device-settings.js";
import { mountHistory } from "./history.js";
import { alertItem } from "./fleet.js";
import { CHANNELS, NAMES, UNITS, h, num, time, toast } from "./format.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export function mountDevice(main, deviceId, ctx) {
  const path = `/v1/devices/${encodeURIComponent(deviceId)}`;
  const header = h("div.device-head");
  const current = h("section.cards", { id: "current" });
  const side = h("div.side");
  const charts = h("section.panel", { id: "charts" }, h("h2", {}, "Last 24 hours"), h("p.muted", { id: "chart-source" }, "loading…"));
  // late-bound: the helpers below are declared further down
  const settings = deviceSettings(deviceId, { fail: (what) => (err) => fail(what)(err), refresh: () => refreshAll(), reload: () => loadView() });
  const { rulesPanel, subsPanel } = settings;
  const alertsList = h("ol.alerts", { id: "device-alerts" });
  const history = h("section.panel", { id: "history" });
  const liveState = h("span.badge", { id: "live-state" }, "connecting");
  main.replaceChildren(
    h("p", {}, h("a", { href: "#/" }, "← fleet")),
    header,
    current,
    side,
    charts,
    h("div.columns", {}, rulesPanel, h("section.panel", { id: "device-alerts-panel" }, h("h2", {}, "Alerts ", liveState), alertsList)),
    subsPanel,
    history,
  );

  let view = null;
  const plots = new Map();
  let stopped = false;
  let archive = "unknown"; // what the archive's answers said: "ok" | "behind" | "absent" | "unknown"

  const fail = (what) => (err) => {
    if (err instanceof ApiError && err.status === 401) return ctx.onDenied();
    toast(`${what}: ${err instanceof ApiError ? err.describe() : err.message}`, "error");
  };

  // ---- the twin
  async function loadView() {
    view = await api(path);
    renderHeader();
    renderCurrent();
    renderSide();
    settings.render(view);
    return view;
  }

  const endOf = () => Math.max(view?.lastT ?? 0, 0) || Date.now();

  function renderHeader() {
    header.replaceChildren(
      h("h1", {}, deviceId, " ", h(`span.badge.${view.online ? "ok" : "warn"}`, { id: "online" }, view.online ? "online" : "offline")),
      h(
        "p.muted",
        {},
        `${num(view.readings, 0)} readings · ${num(view.duplicates, 0)} duplicates · ${num(view.late, 0)} late · last reading ${time(view.lastT)}`,
        view.lastSeen ? ` (arrived ${time(view.lastSeen)})` : "",
      ),
    );
  }

  function renderCurrent() {
    const present = CHANNELS.filter((ch) => view.channels[ch] !== undefined);
    current.replaceChildren(
      ...(present.length === 0
        ? [h("p.muted", {}, "No readings yet.")]
        : present.map((ch) => {
            const c = view.channels[ch];
            return h(
              "div.card",
              { dataset: { channel: ch } },
              h("div.card-title", {}, NAMES[ch]),
              h("div.card-value", {}, h("span.value", {}, num(c.last)), h("span.unit", {}, ` ${UNITS[ch]}`)),
              h("div.card-note", {}, `mean ${num(c.mean)} · min ${num(c.min)} · max ${num(c.max)} · ewma ${num(c.ewma)} · n ${num(c.count, 0)}`),
            );
          })),
    );
  }

  function renderSide() {
    const parts = [];
    const occ = view.occupancy;
    if (occ && typeof occ === "object") {
      parts.push(
        h(
          "div.card",
          { id: "occupancy" },
          h("div.card-title", {}, "Occupancy"),
          h("div.card-value", {}, occ.occupied ? "occupied" : "empty"),
          h("div.card-note", {}, `p = ${num(occ.probability, 2)}${occ.since ? ` · since ${time(occ.since)}` : ""}`),
        ),
      );
    }
    for (const ch of ["co2", "voc"]) {
      const cal = view.calibration?.[ch];
      if (cal === undefined) continue;
      parts.push(
        h(
          "div.card",
          { id: `calibration-${ch}` },
          h("div.card-title", {}, `${NAMES[ch]} calibration`),
          h("div.card-value", {}, `offset ${num(cal.offset)} ${UNITS[ch]}`),
          h(
            "div.card-note",
            {},
            `baseline ${cal.baseline === undefined ? "not yet (needs a closed day)" : `${num(cal.baseline)} ${UNITS[ch]}`} `,
            h("button.small", { onclick: () => recalibrate(ch) }, "recalibrate"),
          ),
        ),
      );
    }
    side.replaceChildren(h("section.cards", {}, ...parts));
  }

  async function recalibrate(ch) {
    if (!confirm(`Forget the ${NAMES[ch]} baseline of ${deviceId} and start over?`)) return;
    await command(deviceId, { type: "recalibrate", channel: ch })
      .then(() => toast(`${NAMES[ch]} recalibrated`))
      .then(loadView)
      .catch(fail("recalibrate"));
  }

  // ---- 24-hour charts
  /** Readings of [fromMs, toMs) from the archive, following the cursor; and what the answer says of its sources. */
  async function readingsWindow(fromMs, toMs) {
    const readings = [];
    let cursor;
    let coverage;
    for (let page = 0; page < 10; page++) {
      const q = new URLSearchParams({ from: String(fromMs), to: String(toMs), limit: "1000", ...(cursor ? { cursor } : {}) });
      const r = await api(`${path}/readings?${q}`);
      readings.push(...(r.readings ?? []));
      coverage = r.coverage ?? coverage;
      if (!r.next) break;
      cursor = r.next;
    }
    return { readings, coverage };
  }

  async function drawCharts() {
    const end = endOf();
    const from = end - DAY_MS;
    let source;
    const series = new Map();
    let readings = [];
    try {
      const r = await readingsWindow(from, end + 1);
      archive = r.coverage?.archive ?? "ok";
      readings = r.readings;
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 503)) throw err;
      // 404: a gateway without the history routes; 503: no archive answered
      archive = err.code === "AIRTWIN_ERR_HTTP_NOT_FOUND" ? "absent" : "unknown";
    }
    if (archive !== "absent" && archive !== "unknown" && readings.length > 0) {
      for (const r of readings) for (const ch of CHANNELS) if (typeof r[ch] === "number") (series.get(ch) ?? series.set(ch, []).get(ch)).push([r.t, r[ch]]);
      source = "Every reading, from the archive; new readings arrive live.";
    } else {
      for (const ch of CHANNELS) {
        const c = view.channels[ch];
        if (c === undefined) continue;
        series.set(ch, c.hourly.filter((b) => b.start >= from - HOUR_MS).map((b) => [b.start + HOUR_MS / 2, b.mean]));
      }
      source =
        archive === "absent"
          ? "Hourly means from the twin: the archive is not running behind this gateway, so single readings of the past are not available. New readings arrive live."
          : archive === "unknown"
            ? "Hourly means from the twin: the archive did not answer. New readings arrive live."
            : "Hourly means from the twin: the archive has no readings of this day yet. New readings arrive live.";
    }
    const events = await eventSpans(end);
    for (const p of plots.values()) p.destroy();
    plots.clear();
    const blocks = [];
    for (const ch of CHANNELS) {
      if (!series.has(ch) && view.channels[ch] === undefined) continue;
      const box = h("div.chart", { dataset: { channel: ch } });
      blocks.push(h("div.chart-block", {}, h("h3", {}, NAMES[ch]), box));
      plots.set(ch, { box, ch, points: series.get(ch) ?? [] });
    }
    charts.replaceChildren(h("h2", {}, "Last 24 hours"), h("p.muted", { id: "chart-source" }, source), ...blocks);
    for (const [ch, p] of plots) {
      const rules = view.rules.filter((r) => r.channel === ch);
      plots.set(ch, channelChart(p.box, ch, { points: p.points, rules, events: events.filter((e) => e.channel === ch), windowMs: DAY_MS, endMs: end }));
    }
  }

  /** Event spans of the window: ended events from the alerts, and the ones active now from the twin. */
  async function eventSpans(end) {
    const from = Math.min(end - DAY_MS, Date.now() - DAY_MS);
    const spans = [];
    try {
      const r = await api(`${path}/events?from=${from}&limit=1000`);
      for (const e of r.recent ?? []) if (e.startedAt !== undefined) spans.push({ channel: e.channel, from: e.startedAt, to: e.endedAt ?? end });
    } catch (err) {
      fail("events")(err);
    }
    for (const r of view.rules) {
      const ev = view.events?.[r.id];
      if (ev && (ev.state === "active" || ev.state === "clearing") && ev.startedAt !== undefined && !spans.some((s) => s.from === ev.startedAt && s.channel === r.channel)) {
        spans.push({ channel: r.channel, from: ev.startedAt, to: end });
      }
    }
    return spans;
  }

  async function refreshAll() {
    await loadView();
    const end = endOf();
    const events = await eventSpans(end);
    for (const [ch, p] of plots) p.update?.({ rules: view.rules.filter((r) => r.channel === ch), events: events.filter((e) => e.channel === ch) });
  }

  // ---- alerts
  async function loadAlerts() {
    const from = Math.min(endOf() - DAY_MS, Date.now() - DAY_MS);
    const r = await api(`${path}/alerts?from=${from}&limit=200`);
    const list = r.alerts ?? [];
    alertsList.replaceChildren(...list.slice(-100).reverse().map(alertItem));
    for (const a of list) seen.add(a.id);
  }
  const seen = new Set();

  // ---- live
  let refreshTimer;
  const stopLive = follow(
    `${path}/live`,
    ({ event, data }) => {
      if (event === "readings") {
        for (const r of data.readings ?? []) {
          for (const ch of CHANNELS) if (typeof r[ch] === "number") plots.get(ch)?.add?.(r.t, r[ch]);
        }
        updateLast(data.readings ?? []);
      } else if (event === "alert" && !seen.has(data.id)) {
        seen.add(data.id);
        alertsList.prepend(alertItem(data));
        // the rule states and event spans changed: fetch them once things settle
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(() => void refreshAll().catch(fail("refresh")), 500);
      }
    },
    (state) => {
      liveState.textContent = state === "open" ? "live" : state;
      liveState.className = `badge ${state === "open" ? "ok" : "warn"}`;
      if (state === "denied") ctx.onDenied();
    },
  );

  function updateLast(readings) {
    const latest = readings[readings.length - 1];
    if (latest === undefined || view === null) return;
    for (const ch of CHANNELS) {
      if (typeof latest[ch] !== "number") continue;
      const el = current.querySelector(`[data-channel="${ch}"] .value`);
      if (el) el.textContent = num(latest[ch]);
    }
  }

  let destroyHistory = () => undefined;
  loadView()
    .then(async () => {
      if (stopped) return;
      destroyHistory = mountHistory(history, { path, view: () => view, endOf, archiveState: () => archive });
      await Promise.all([drawCharts().catch(fail("charts")), loadAlerts().catch(fail("alerts"))]);
    })
    .catch((err) => {
      if (err instanceof ApiError && err.status === 401) return ctx.onDenied();
      main.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← fleet")), h("p.error", { id: "device-error" }, `${deviceId}: ${err instanceof ApiError ? err.describe() : err.message}`));
    });

  return () => {
    stopped = true;
    clearTimeout(refreshTimer);
    stopLive();
    destroyHistory();
    for (const p of plots.values()) p.destroy?.();
  };
}
